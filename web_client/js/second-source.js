// A second video source next to the camera: the ultrasound machine's video output through a
// capture card (which the browser lists as one more camera), another camera, or a shared screen.

/**
 * @typedef {{kind: 'device', deviceId: string, label: string} | {kind: 'screen'}} SecondOption
 */

/** Whether this browser can share a screen (desktop browsers; not phones). */
export function canShareScreen() {
  return typeof navigator.mediaDevices?.getDisplayMedia === 'function';
}

/**
 * What can be shared: every camera-like device except the one the camera uses, then the screen.
 * Device labels are only known once camera access was granted; unnamed ones get numbered by
 * the caller.
 * @param {string|undefined} mainDeviceId  the deviceId of the camera already in the call
 * @returns {Promise<SecondOption[]>}
 */
export async function secondOptions(mainDeviceId) {
  const options = [];
  if (navigator.mediaDevices?.enumerateDevices) {
    try {
      for (const d of await navigator.mediaDevices.enumerateDevices()) {
        if (d.kind !== 'videoinput' || !d.deviceId || d.deviceId === mainDeviceId) continue;
        options.push({ kind: 'device', deviceId: d.deviceId, label: d.label });
      }
    } catch (err) {
      console.warn('enumerateDevices failed', err);
    }
  }
  if (canShareScreen()) options.push({ kind: 'screen' });
  return options;
}

/**
 * Open the chosen source: one video track in a stream of its own, never audio (the room's
 * microphone already carries the sound).
 * @param {SecondOption} option
 * @returns {Promise<{track: MediaStreamTrack, stream: MediaStream}>}
 */
export async function openSecond(option) {
  const stream = option.kind === 'screen'
    ? await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false })
    : await navigator.mediaDevices.getUserMedia({
      audio: false,
      // A capture card delivers what the ultrasound machine outputs; ask for its full picture.
      video: { deviceId: { exact: option.deviceId }, width: { ideal: 1920 }, height: { ideal: 1080 } },
    });
  const [track] = stream.getVideoTracks();
  for (const extra of stream.getTracks()) if (extra !== track) extra.stop();
  if (!track) throw new DOMException('no video track', 'NotFoundError');
  // Fine detail (text, calipers, measurements) matters more than smooth motion.
  if ('contentHint' in track) track.contentHint = 'detail';
  return { track, stream: new MediaStream([track]) };
}
