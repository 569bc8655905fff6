// The camera's first frames at a size the connection can carry from its first packet.
//
// A new connection's send-side estimate starts at 300 kbit/s (Chromium's default start bitrate).
// WebRTC's encoder drops the first frames of a source larger than that start carries (up to
// four, ~130 ms at 30 frames/s; VP8 wants 300 kbit/s from 640×360 up) and asks the camera for
// smaller ones: a 1280×720 camera's first frame reached the other side ~150 ms after ICE, and
// at 320×180. Sent scaled down to at most 480×270 from the start, the first frame leaves at
// once. The sender's adaptation (sender-adaptation.js) sets the size its
// plan wants (full size at level 0) once the sender has encoded its first frame: before that,
// on a busy machine where the connection takes more than its first second, full size would
// bring the dropped frames back; docs/network.md.

/**
 * The largest first frame (pixels) the start bitrate carries without the encoder dropping it:
 * 480×270, whose VP8 start needs 200 kbit/s. 640×360 needs the whole 300 kbit/s, and with the
 * voice's share taken from it the encoder still dropped its first frames now and then (1 run
 * in 5 under load, shrinking to 320×180).
 */
export const START_PIXELS = 480 * 270;

/** Senders whose camera started scaled down and has not encoded a frame yet. */
const starting = new WeakSet();

/**
 * How much to scale a camera track down for its first frames: 1 (not at all) when it is small
 * enough already, 8/3 for 1280×720 (480×270), 4 for 1920×1080. The first frame's width is kept
 * a whole even number of pixels.
 * @param {MediaStreamTrack} track
 */
export function startScale(track) {
  const { width, height } = track.getSettings?.() ?? {};
  if (track.kind !== 'video' || !width || !height) return 1;
  const pixels = width * height;
  if (pixels <= START_PIXELS) return 1;
  const startWidth = 2 * Math.floor((width * Math.sqrt(START_PIXELS / pixels)) / 2);
  return startWidth > 0 ? width / startWidth : 1;
}

/**
 * The send encodings a new transceiver for `track` starts with (addTransceiver's sendEncodings).
 * @param {MediaStreamTrack} track
 * @returns {RTCRtpEncodingParameters[]|undefined}
 */
export function startEncodings(track) {
  const scale = startScale(track);
  return scale > 1 ? [{ scaleResolutionDownBy: scale }] : undefined;
}

/**
 * Scale the camera's first frames on a sender made by addTrack (which takes no encodings),
 * before the connection is negotiated. A browser that refuses only loses the head start.
 * @param {RTCRtpSender} sender
 */
export function startSmall(sender) {
  const track = sender.track;
  if (!track) return;
  const scale = startScale(track);
  if (scale <= 1) return;
  const params = sender.getParameters();
  if (!params.encodings?.length) params.encodings = [{}];
  params.encodings[0].scaleResolutionDownBy = scale;
  starting.add(sender);
  sender.setParameters(params).catch((err) => console.warn('first frames: setParameters', err));
}

/**
 * `sender` was made with startEncodings(): its size is the start's until its first frame.
 * @param {RTCRtpSender} sender
 */
export function startedSmall(sender) {
  starting.add(sender);
}

/**
 * Whether `sender`'s camera still waits for its first frame at the start size: until it has
 * encoded one, the adaptation leaves its size alone.
 * @param {RTCRtpSender} sender
 * @returns {Promise<boolean>}
 */
export async function stillStarting(sender) {
  if (!starting.has(sender)) return false;
  let stats;
  try {
    stats = await sender.getStats();
  } catch {
    return true; // closing or not negotiated yet: ask again at the next look
  }
  for (const report of stats.values()) {
    if (report.type === 'outbound-rtp' && report.framesEncoded > 0) {
      starting.delete(sender);
      return false;
    }
  }
  return true;
}
