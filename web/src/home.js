// Home page: live streams first, then upcoming, then completed; search by name; refreshed
// from the notification stream so a stream that goes live appears without a reload.
import { listVideos, subscribe } from './api.js';
import { h, announce } from './dom.js';
import { formatDuration, formatTime, spokenDuration, statusOf } from './format.js';

const SECTIONS = [
  { id: 'live', title: 'Live now', status: 'live', sort: '-started_at', empty: 'Nothing is live right now.' },
  { id: 'upcoming', title: 'Upcoming', status: 'upcoming', sort: 'name', empty: 'No upcoming streams.' },
  { id: 'completed', title: 'Completed', status: 'completed,archived', sort: '-started_at', empty: 'No past streams yet.' },
];

let lastQuery = '';

/** Renders the home page into `main`; returns a function that tears it down. */
export function renderHome(main) {
  document.title = 'Livecast';
  const lists = new Map();
  let controller = null;
  let searchTimer = 0;
  let refreshTimer = 0;

  const input = h('input', {
    id: 'search', type: 'search', name: 'q', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Search by name', value: lastQuery,
  });
  const form = h('form', { class: 'search', role: 'search', onsubmit: (e) => { e.preventDefault(); refresh(); } },
    h('label', { for: 'search' }, 'Search streams'),
    input,
  );
  input.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refresh, 250);
  });

  const sections = SECTIONS.map((section) => {
    const list = h('ul', { class: 'cards', 'aria-labelledby': `${section.id}-heading` });
    const status = h('p', { class: 'empty', hidden: true }, section.empty);
    lists.set(section.id, { list, status, section });
    return h('section', { class: `shelf shelf-${section.id}`, id: `section-${section.id}`, 'aria-labelledby': `${section.id}-heading` },
      h('h2', { id: `${section.id}-heading` }, section.title),
      list, status);
  });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });

  main.replaceChildren(h('h1', { class: 'visually-hidden' }, 'Streams'), form, error, ...sections);

  async function refresh() {
    lastQuery = input.value.trim();
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    try {
      const results = await Promise.all(SECTIONS.map((s) => listVideos({ status: s.status, q: lastQuery, sort: s.sort }, signal)));
      if (signal.aborted) return;
      error.hidden = true;
      SECTIONS.forEach((section, i) => fill(lists.get(section.id), results[i]));
      main.dataset.loaded = 'true';
    } catch (e) {
      if (signal.aborted) return;
      error.textContent = `${e.message}. Retrying…`;
      error.hidden = false;
      scheduleRefresh(5000);
    }
  }

  function scheduleRefresh(delay) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, delay);
  }

  const unsubscribe = subscribe((kind, data) => {
    if (kind === 'stream.live' && data.name) announce(`${data.name} is live now`);
    // Coalesce bursts of events into one refresh.
    scheduleRefresh(200);
  });
  // Durations of live streams move on; refresh them now and then.
  const ticker = setInterval(() => { if (!document.hidden) refresh(); }, 30000);

  refresh();
  return () => {
    unsubscribe();
    clearInterval(ticker);
    clearTimeout(searchTimer);
    clearTimeout(refreshTimer);
    controller?.abort();
  };
}

function fill({ list, status, section }, videos) {
  list.replaceChildren(...videos.map(card));
  status.hidden = videos.length > 0;
  if (lastQuery && videos.length === 0) status.textContent = `No ${section.title.toLowerCase()} streams match “${lastQuery}”.`;
  else status.textContent = section.empty;
}

function card(video) {
  const status = statusOf(video.status);
  const started = formatTime(video.started_at) ?? formatTime(video.scheduled_start);
  const duration = formatDuration(video.duration_seconds);
  const thumbnail = video.thumbnail_url
    ? h('img', { class: 'thumb', src: video.thumbnail_url, alt: '', loading: 'lazy', decoding: 'async' })
    : h('div', { class: 'thumb placeholder', 'aria-hidden': 'true' }, (video.name || '?').trim().charAt(0).toUpperCase());
  return h('li', { class: 'card', 'data-id': video.id, 'data-status': status.kind },
    h('a', { href: `#/watch/${encodeURIComponent(video.id)}`, class: 'card-link' },
      h('div', { class: 'thumb-wrap' },
        thumbnail,
        h('span', { class: `badge badge-${status.kind}` }, status.label),
        duration && h('span', { class: 'duration', 'aria-label': `Duration ${spokenDuration(video.duration_seconds)}` }, duration),
      ),
      h('span', { class: 'card-title' }, video.name || 'Untitled stream'),
      h('span', { class: 'card-meta' },
        started ? h('time', { datetime: video.started_at ?? video.scheduled_start }, status.kind === 'upcoming' ? `Starts ${started}` : `Started ${started}`)
          : status.kind === 'upcoming' ? 'Not started yet' : ''),
    ),
  );
}
