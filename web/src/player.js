// Plays an HLS master playlist in a <video>: hls.js where Media Source Extensions exist,
// the browser's own HLS (Safari, iOS) otherwise. hls.js is loaded on demand, so the home page
// does not pay for it.

/**
 * @typedef {object} PlayerView callbacks the watch page provides
 * @property {(levels: {index: number, label: string}[]) => void} onLevels
 * @property {(label: string) => void} onAutoLevel  the level Auto is playing now
 * @property {(live: boolean) => void} onLiveChange
 * @property {(behind: boolean) => void} onBehindLive
 * @property {(message: string|null) => void} onProblem
 */

/**
 * Starts playing `url` in `video`; returns a controller.
 * @param {HTMLVideoElement} video
 * @param {string} url
 * @param {PlayerView} view
 */
export async function createPlayer(video, url, view) {
  const stats = { waiting: 0, bufferStalled: 0, videoErrors: 0, fatalErrors: 0, errors: [], started: false, levelSwitches: [] };
  video.addEventListener('playing', () => { stats.started = true; view.onProblem(null); });
  video.addEventListener('waiting', () => { if (stats.started) stats.waiting += 1; });
  video.addEventListener('error', () => {
    stats.videoErrors += 1;
    stats.errors.push(`video: ${video.error?.message || video.error?.code}`);
  });

  const { default: Hls } = await import('hls.js');
  const player = Hls.isSupported()
    ? withHlsJs(Hls, video, url, view, stats)
    : video.canPlayType('application/vnd.apple.mpegurl')
      ? withNativeHls(video, url, view)
      : null;
  if (!player) {
    view.onProblem('This browser cannot play HLS video.');
    return { destroy() {}, setLevel() {}, jumpToLive() {} };
  }
  // A hook for the browser test and for debugging from the console; holds no secrets.
  window.__livecastPlayer = { ...player, video, stats };
  const play = video.play();
  if (play) play.catch(() => { /* autoplay refused: the controls are there */ });
  return player;
}

function levelLabel(level) {
  if (level.height) return `${level.height}p`;
  if (level.videoCodec === undefined && level.audioCodec) return 'Audio only';
  return `${Math.round((level.bitrate || 0) / 1000)} kbps`;
}

/** A load policy that, unlike hls.js's default, also retries a 404 for about 10 s. */
function waitingForSegments(maxLoadTimeMs) {
  return {
    maxTimeToFirstByteMs: 10000,
    maxLoadTimeMs,
    timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: {
      maxNumRetry: 10,
      retryDelayMs: 1000,
      maxRetryDelayMs: 2000,
      shouldRetry: (config, count, _timeout, response, retry) =>
        count < config.maxNumRetry && (retry || response?.code === 404),
    },
  };
}

/** Fastest playback rate hls.js uses to catch up with the live edge (bench/glass uses it too). */
const LIVE_CATCH_UP_RATE = 1.25;

function withHlsJs(Hls, video, url, view, stats) {
  const hls = new Hls({
    // Low-Latency HLS where the edge offers it: hls.js plays PART-HOLD-BACK behind the newest
    // part, loads parts and preload hints, and blocks on the next part; a stream without parts
    // plays three target durations behind, as standard HLS.
    lowLatencyMode: true,
    // A viewer who joined (or fell) further behind than PART-HOLD-BACK, since it starts at an
    // independent part up to a second earlier, catches up by playing a little faster.
    maxLiveSyncPlaybackRate: LIVE_CATCH_UP_RATE,
    backBufferLength: 60,
    // The edge answers 404 until the first segments of a new stream exist.
    manifestLoadPolicy: { default: waitingForSegments(20000) },
    playlistLoadPolicy: { default: waitingForSegments(10000) },
  });
  let live = null;
  let recoveries = 0;

  hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
    const levels = data.levels
      .map((level, index) => ({ index, label: levelLabel(level), height: level.height || 0, bitrate: level.bitrate || 0 }))
      .sort((a, b) => b.height - a.height || b.bitrate - a.bitrate);
    view.onLevels(levels);
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
    stats.levelSwitches.push(data.level);
    const level = hls.levels[data.level];
    if (level) view.onAutoLevel(levelLabel(level));
  });
  hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
    if (data.details.live !== live) {
      live = data.details.live;
      view.onLiveChange(live);
    }
  });
  hls.on(Hls.Events.FRAG_BUFFERED, () => { recoveries = 0; });
  hls.on(Hls.Events.ERROR, (_e, data) => {
    if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) stats.bufferStalled += 1;
    if (!data.fatal) return;
    stats.fatalErrors += 1;
    stats.errors.push(`hls: ${data.type}/${data.details}`);
    recoveries += 1;
    if (recoveries > 5) {
      view.onProblem('The stream cannot be played right now.');
      hls.destroy();
      return;
    }
    view.onProblem('Reconnecting…');
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR || data.details === Hls.ErrorDetails.MANIFEST_LOAD_TIMEOUT) {
      setTimeout(() => hls.loadSource(url), 2000);
    } else {
      setTimeout(() => hls.startLoad(), 1000);
    }
  });

  const onTime = () => {
    if (!live || hls.liveSyncPosition === null) return;
    const target = hls.levels[hls.currentLevel]?.details?.targetduration ?? 2;
    view.onBehindLive(hls.liveSyncPosition - video.currentTime > Math.max(6, 2 * target));
  };
  video.addEventListener('timeupdate', onTime);

  hls.loadSource(url);
  hls.attachMedia(video);

  return {
    hls,
    /** -1 for Auto, else an index into hls.levels; switches at once. */
    setLevel(index) { hls.currentLevel = index; },
    /** Height of the level being played, or null. */
    currentHeight() { return hls.levels[hls.currentLevel]?.height ?? null; },
    jumpToLive() {
      if (hls.liveSyncPosition !== null) video.currentTime = hls.liveSyncPosition;
      video.play().catch(() => {});
    },
    destroy() {
      video.removeEventListener('timeupdate', onTime);
      hls.destroy();
    },
  };
}

function withNativeHls(video, url, view) {
  view.onLevels([]);
  const onMeta = () => view.onLiveChange(video.duration === Infinity);
  const onTime = () => {
    if (video.duration !== Infinity || video.seekable.length === 0) return;
    view.onBehindLive(video.seekable.end(video.seekable.length - 1) - video.currentTime > 10);
  };
  video.addEventListener('loadedmetadata', onMeta);
  video.addEventListener('durationchange', onMeta);
  video.addEventListener('timeupdate', onTime);
  video.src = url;
  return {
    hls: null,
    setLevel() {},
    currentHeight() { return video.videoHeight || null; },
    jumpToLive() {
      if (video.seekable.length) video.currentTime = video.seekable.end(video.seekable.length - 1);
      video.play().catch(() => {});
    },
    destroy() {
      video.removeEventListener('loadedmetadata', onMeta);
      video.removeEventListener('durationchange', onMeta);
      video.removeEventListener('timeupdate', onTime);
      video.removeAttribute('src');
      video.load();
    },
  };
}
