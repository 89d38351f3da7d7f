// Watch page: the player, a quality menu, a LIVE indicator with jump-to-live, and status that
// follows the notification stream (an upcoming stream starts playing when it goes live).
import { getVideo, playbackUrl, subscribe } from './api.js';
import { h, announce } from './dom.js';
import { formatDuration, formatTime, statusOf } from './format.js';
import { createPlayer } from './player.js';

/** Renders the watch page for stream `id` into `main`; returns a teardown function. */
export function renderWatch(main, id) {
  let player = null;
  let closed = false;
  const controller = new AbortController();

  const back = h('a', { href: '#/', class: 'back' }, '← All streams');
  const title = h('h1', { class: 'watch-title' }, 'Loading…');
  const badge = h('span', { class: 'badge', hidden: true });
  const meta = h('p', { class: 'watch-meta' });
  const problem = h('p', { class: 'problem', role: 'status', hidden: true });
  const video = h('video', {
    id: 'player', controls: true, playsinline: true, muted: true, autoplay: true, preload: 'auto',
    'aria-label': 'Stream video',
  });
  video.muted = true; // autoplay needs it; the controls unmute

  const liveIndicator = h('span', { class: 'live-indicator', hidden: true, id: 'live-indicator' }, 'LIVE');
  const jump = h('button', { type: 'button', class: 'jump-live', hidden: true, id: 'jump-live',
    onclick: () => player?.jumpToLive() }, 'Jump to live');
  const quality = h('select', { id: 'quality', disabled: true, onchange: () => player?.setLevel(Number(quality.value)) },
    h('option', { value: '-1' }, 'Auto'));
  const controls = h('div', { class: 'player-bar' },
    liveIndicator, jump,
    h('span', { class: 'spacer' }),
    h('label', { for: 'quality' }, 'Quality'), quality,
  );

  main.replaceChildren(back, h('div', { class: 'watch-head' }, title, badge), meta,
    h('div', { class: 'player-frame' }, video), controls, problem);

  const view = {
    onLevels(levels) {
      quality.replaceChildren(h('option', { value: '-1' }, 'Auto'),
        ...levels.map((l) => h('option', { value: String(l.index) }, l.label)));
      quality.disabled = levels.length === 0;
    },
    onAutoLevel(label) {
      quality.options[0].textContent = quality.value === '-1' ? `Auto (${label})` : 'Auto';
    },
    onLiveChange(live) {
      liveIndicator.hidden = !live;
      jump.hidden = !live;
      main.dataset.playback = live ? 'live' : 'vod';
    },
    onBehindLive(behind) {
      liveIndicator.classList.toggle('behind', behind);
      liveIndicator.setAttribute('aria-label', behind ? 'Live, playing behind the live edge' : 'Live, at the live edge');
      jump.disabled = !behind;
    },
    onProblem(message) {
      problem.hidden = !message;
      problem.textContent = message ?? '';
    },
  };

  function show(video_) {
    document.title = `${video_.name} · Livecast`;
    title.textContent = video_.name || 'Untitled stream';
    const status = statusOf(video_.status);
    badge.hidden = false;
    badge.className = `badge badge-${status.kind}`;
    badge.textContent = status.label;
    main.dataset.status = status.kind;
    const started = formatTime(video_.started_at);
    const duration = status.kind === 'completed' ? formatDuration(video_.duration_seconds) : null;
    meta.textContent = [started && `Started ${started}`, duration && `Duration ${duration}`, video_.description]
      .filter(Boolean).join(' · ');
    return status.kind;
  }

  async function start() {
    if (player || closed) return;
    const pending = createPlayer(video, playbackUrl(id), view);
    player = { destroy() { pending.then((p) => p.destroy()); }, setLevel: () => {}, jumpToLive: () => {} };
    const real = await pending;
    if (closed) { real.destroy(); return; }
    player = real;
  }

  async function load() {
    try {
      const found = await getVideo(id, controller.signal);
      if (closed) return;
      if (!found) {
        title.textContent = 'Stream not found';
        view.onProblem('This stream does not exist or is not public.');
        video.hidden = true;
        return;
      }
      const kind = show(found);
      if (kind === 'upcoming') {
        view.onProblem('This stream has not started yet. It will play here when it goes live.');
      } else {
        await start();
      }
    } catch (e) {
      if (!closed) view.onProblem(e.message);
    }
  }

  const unsubscribe = subscribe((kind, data) => {
    if (data.stream_id !== id) return;
    getVideo(id, controller.signal).then((v) => v && show(v)).catch(() => {});
    if (kind === 'stream.live') {
      announce('The stream is live');
      start();
    } else {
      announce('The stream has ended');
    }
  });

  load();
  return () => {
    closed = true;
    controller.abort();
    unsubscribe();
    player?.destroy();
    if (window.__livecastPlayer?.video === video) delete window.__livecastPlayer;
  };
}
