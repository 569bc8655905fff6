// What this browser sends into the call: the camera + microphone stream, and the second video
// source (ultrasound capture, another camera, the screen) while it is shared.

import { openSecond } from '../second-source.js';
import { mark } from '../timings.js';

/** @typedef {import('./paths/peer-link.js').SecondSource} SecondSource */

/** What getUserMedia's error means for the user (they can still join to see and hear). */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'call.media.denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'call.media.missing';
    case 'NotReadableError':
      return 'call.media.busy';
    default:
      return 'call.media.failed';
  }
}

/**
 * Ask for camera and microphone as a call wants them; null where the browser cannot (a page not
 * on https:// or localhost). Rejects as getUserMedia does.
 * @returns {Promise<MediaStream>|null}
 */
export function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) return null;
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true },
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' },
  });
}

export class LocalMedia {
  constructor() {
    /** @type {MediaStream|null} */
    this.stream = null;
    /** @type {SecondSource|null} */
    this.second = null;
  }

  /**
   * Ask for camera and microphone (once per call), or take `opening`, a request already made
   * (openCamera(), by a call link's early start). Resolves with the message key that tells the
   * user why there is no stream, or null; without one, the call still receives.
   * @param {Promise<MediaStream>|null} [opening]
   * @returns {Promise<string|null>}
   */
  async start(opening = null) {
    if (this.stream) {
      // Asked for again meanwhile (a call link's early request): one stream is enough.
      opening?.then((extra) => extra.getTracks().forEach((track) => track.stop()), () => {});
      return null;
    }
    const asked = opening ?? openCamera();
    if (!asked) return 'call.media.insecure'; // https:// or localhost only
    try {
      this.stream = await asked;
      return null;
    } catch (err) {
      console.warn('getUserMedia failed', err);
      return mediaErrorKey(err);
    } finally {
      mark('media');
    }
  }

  tracks(kind) {
    return (kind === 'audio' ? this.stream?.getAudioTracks() : this.stream?.getVideoTracks()) ?? [];
  }

  /** Whether there is a microphone ('audio') or camera ('video') to switch. */
  has(kind) {
    return this.tracks(kind).length > 0;
  }

  /** Whether the microphone or camera is switched off. */
  isOff(kind) {
    const [track] = this.tracks(kind);
    return Boolean(track) && !track.enabled;
  }

  /**
   * Switch the microphone or camera off or back on. Disabling (not stopping) the track keeps
   * the connections as they are: the others get silence / black frames, and turning it back on
   * needs no renegotiation.
   */
  toggle(kind) {
    const tracks = this.tracks(kind);
    if (!tracks.length) return;
    const on = !tracks[0].enabled;
    for (const track of tracks) track.enabled = on;
  }

  /**
   * Open a second source (replacing the one shared, if any). Rejects as getUserMedia /
   * getDisplayMedia do; `onEnded` runs when the browser's own "Stop sharing" ends it.
   * @param {import('../second-source.js').SecondOption} option
   * @param {() => void} onEnded
   */
  async openSecond(option, onEnded) {
    const second = await openSecond(option);
    this.stopSecond();
    this.second = second;
    second.track.addEventListener('ended', () => this.second === second && onEnded());
    return second;
  }

  stopSecond() {
    const second = this.second;
    this.second = null;
    second?.track.stop();
  }

  /** Release camera, microphone and second source (the browser's indicators go off). */
  stop() {
    this.stopSecond();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
