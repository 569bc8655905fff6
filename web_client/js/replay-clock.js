// The replay's clock: where a moment of the lecture (wall-clock time) lies in a replay
// playlist and back (docs/training.md, "The stage in the replay"). Pure functions over the
// playlist's text, shared by the player's streams and checked in the end-to-end tests.

/**
 * A replay playlist as the player's timeline: each segment's wall-clock start (its
 * `EXT-X-PROGRAM-DATE-TIME`, ms), its position in the playlist (the sum of the `EXTINF`s
 * before it: where hls.js and Safari place it, across discontinuities), its duration (s) and
 * its run (how many discontinuities precede it: a stage appearance, a lecturer's reconnection).
 */
export function playlistSegments(text) {
  const found = [];
  let at = NaN;
  let position = 0;
  let run = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) at = Date.parse(line.slice(25));
    else if (line.startsWith('#EXT-X-DISCONTINUITY') && !line.includes('SEQUENCE')) run += 1;
    else if (line.startsWith('#EXTINF:')) {
      const duration = parseFloat(line.slice(8));
      if (Number.isFinite(at)) found.push({ at, position, duration, run });
      position += duration;
      at = NaN;
    }
  }
  return found;
}

/** The wall-clock time (ms) at `seconds` into the playlist of `segments`. */
export function wallAt(segments, seconds) {
  const segment = segments.find((s) => seconds < s.position + s.duration) ?? segments.at(-1);
  return segment.at + (seconds - segment.position) * 1000;
}

/** Where the playlist shows the wall-clock time `wall` (s): in a gap between runs, where the
 * next run begins; before the first segment, 0. */
export function positionAt(segments, wall) {
  const segment = segments.find((s) => wall < s.at + s.duration * 1000) ?? segments.at(-1);
  return Math.max(segment.position, segment.position + (wall - segment.at) / 1000);
}

/** The segment being played at the wall-clock time `wall`, or undefined in a gap. */
export function segmentAt(segments, wall) {
  return segments.find((s) => wall >= s.at && wall < s.at + s.duration * 1000);
}
