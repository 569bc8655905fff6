// The trainee on stage (docs/training.md, "On stage"): what the lecturer's page and the
// player share. Both talk over WebRTC through the training's relay: the trainee publishes
// camera and microphone (`stage-publish`), and the relay offers each side the other's media
// (`stage-offer`), which the page answers (`stage-answer`) on one receiving connection.

import { request } from './socket.js';

const GATHERING_MS = 5000;

/** H.264 first, so that the server can stream-copy what the browser sends. */
export function preferH264(transceiver) {
  const codecs = RTCRtpSender.getCapabilities?.('video')?.codecs ?? [];
  const h264 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/h264'
    && (c.sdpFmtpLine ?? '').includes('packetization-mode=1'));
  if (!h264.length || !transceiver.setCodecPreferences) return;
  transceiver.setCodecPreferences([...h264, ...codecs.filter((c) => !h264.includes(c))]);
}

/** Resolves once the connection has gathered its candidates (sent in the SDP: no trickle). */
export function gathered(connection) {
  if (connection.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (connection.iceGatheringState === 'complete') resolve(); };
    connection.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, GATHERING_MS);
  });
}

/**
 * Answer the relay's offers of the other side's media; `onTrack(track, source)` for each track
 * that arrives (`camera`, `microphone`, `second`). `close()` ends the receiving connection (a
 * new offer opens a new one).
 */
export function receiveStage(socket, trainingId, iceServers, onTrack) {
  let pc = null;
  let sources = {};
  let queue = Promise.resolve();
  const answer = async (news) => {
    if (!pc || pc.connectionState === 'closed') {
      pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
      pc.addEventListener('track', (event) => onTrack(event.track, sources[event.transceiver.mid]));
    }
    sources = news.sources;
    await pc.setRemoteDescription(news.description);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await request(socket, 'stage-answer', {
      training_id: trainingId, description: { type: 'answer', sdp: pc.localDescription.sdp },
    });
  };
  socket.on('stage-offer', (news) => {
    if (news.training_id !== trainingId) return;
    queue = queue.then(() => answer(news)).catch((err) => console.warn('stage offer', err));
  });
  return {
    connection: () => pc,
    close() { pc?.close(); pc = null; },
  };
}

/** Publish the trainee's camera and microphone on stage: resolves once the relay answered. */
export async function publishOnStage(socket, trainingId, iceServers, media) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  const camera = pc.addTransceiver(media.getVideoTracks()[0], { direction: 'sendonly' });
  const microphone = pc.addTransceiver(media.getAudioTracks()[0], { direction: 'sendonly' });
  preferH264(camera);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  try {
    const { description } = await request(socket, 'stage-publish', {
      training_id: trainingId,
      description: { type: 'offer', sdp: pc.localDescription.sdp },
      sources: { [camera.mid]: 'camera', [microphone.mid]: 'microphone' },
    });
    await pc.setRemoteDescription(description);
  } catch (err) {
    pc.close();
    throw err;
  }
  return pc;
}

/** Whatever the receiving connection brings, into one stream for a `<video>`. */
export function streamInto(video) {
  const stream = new MediaStream();
  video.srcObject = stream;
  return (track) => {
    for (const old of stream.getTracks()) if (old.kind === track.kind) stream.removeTrack(old);
    stream.addTrack(track);
    video.hidden = false;
    video.play().catch(() => {});
  };
}
