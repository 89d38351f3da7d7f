// Viewer-facing wording for statuses, times and durations.

const STATUS = {
  STREAM_ACTIVE: { label: 'Live', kind: 'live' },
  CREATED: { label: 'Upcoming', kind: 'upcoming' },
  PENDING: { label: 'Upcoming', kind: 'upcoming' },
  STREAM_COMPLETE: { label: 'Completed', kind: 'completed' },
  ARCHIVED: { label: 'Completed', kind: 'completed' },
};

/** @returns {{label: string, kind: 'live'|'upcoming'|'completed'|'other'}} */
export function statusOf(status) {
  return STATUS[status] ?? { label: status ? status.toLowerCase() : 'unknown', kind: 'other' };
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** "25 Nov 2026, 10:00" or null. */
export function formatTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : dateFormat.format(date);
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return null;
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "1 hour 2 minutes" style text for screen readers. */
export function spokenDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return null;
  const total = Math.max(0, Math.floor(seconds));
  const parts = [];
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) parts.push(`${h} hour${h === 1 ? '' : 's'}`);
  if (m) parts.push(`${m} minute${m === 1 ? '' : 's'}`);
  if (s || parts.length === 0) parts.push(`${s} second${s === 1 ? '' : 's'}`);
  return parts.join(' ');
}
