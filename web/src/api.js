// The public, unauthenticated APIs a viewer needs: the catalogue and the notification stream.

/** @typedef {{id: string, name: string, description?: string, thumbnail_url?: string|null,
 *   status: string, scheduled_start?: string|null, started_at?: string|null,
 *   ended_at?: string|null, duration_seconds?: number|null, playback_url?: string}} Video */

/**
 * Lists streams.
 * @param {{status: string, q?: string, sort?: string, limit?: number}} query
 * @param {AbortSignal} [signal]
 * @returns {Promise<Video[]>}
 */
export async function listVideos({ status, q, sort, limit = 50 }, signal) {
  const params = new URLSearchParams({ status, limit: String(limit) });
  if (q) params.set('q', q);
  if (sort) params.set('sort', sort);
  const response = await fetch(`/v1/videos?${params}`, { signal, headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`could not list streams (HTTP ${response.status})`);
  const body = await response.json();
  return body.items ?? [];
}

/**
 * One stream, or null if it does not exist (or is not public).
 * @param {string} id
 * @returns {Promise<Video|null>}
 */
export async function getVideo(id, signal) {
  const response = await fetch(`/v1/videos/${encodeURIComponent(id)}`, { signal, headers: { accept: 'application/json' } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`could not load the stream (HTTP ${response.status})`);
  return response.json();
}

/** Same-origin HLS master playlist: the app is served by the edge that serves the stream. */
export function playbackUrl(id) {
  return `/stream/${encodeURIComponent(id)}/master.m3u8`;
}

export const STREAM_EVENTS = ['stream.live', 'stream.completed', 'stream.archived'];

/**
 * Calls `onEvent(kind, data)` for every stream notification until the returned function is
 * called. EventSource reconnects by itself (and resumes with Last-Event-ID).
 * @param {(kind: string, data: {stream_id: string, name?: string}) => void} onEvent
 */
export function subscribe(onEvent) {
  if (typeof EventSource === 'undefined') return () => {};
  const source = new EventSource('/v1/notifications/stream');
  for (const kind of STREAM_EVENTS) {
    source.addEventListener(kind, (event) => {
      try {
        onEvent(kind, JSON.parse(event.data));
      } catch {
        // A malformed event is not worth breaking the page for.
      }
    });
  }
  return () => source.close();
}
