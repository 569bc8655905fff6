// How long a page took to get going, step by step: performance.now() marks (milliseconds since
// the page was opened, the navigation's time origin) of the steps between opening a call link
// and seeing the other person. Exposed as `window.teleconsultTimings` ({marks, steps()}) for
// bench/startup.py and for anyone asking the console; with `localStorage['teleconsult.debug']`
// set, the page also logs them as a table once the first remote frame is shown.
//
// `firstFrame` keeps the size of that first remote frame (call/first-frames.js: the camera's
// first frames go out at a size the start bitrate carries).
//
// Marks, each kept the first time only:
//   link_start        a call link's early start runs (call-link.js: camera, socket and join
//                     asked for while the page's other modules still load)
//   script            the page's modules are loaded and start to run (page.js)
//   token             the server said who the token belongs to (GET /api/me)
//   socket_connected  the socket.io connection is up
//   media             the camera and microphone are open (or refused)
//   join_acked        the server acknowledged `join`
//   ice_connected     the first peer connection (direct or relay) is connected
//   first_remote_frame  the first frame of the other person's video was presented

const marks = {};
/** The size of the other person's first video frame as presented: {width, height}. */
const firstFrame = {};
const onFirstFrame = [];

/** Keep `name` at the current time, unless it is already kept. */
export function mark(name) {
  if (name in marks) return;
  marks[name] = Math.round(performance.now() * 10) / 10;
  performance.mark?.(`teleconsult:${name}`);
  if (name !== 'first_remote_frame') return;
  if (debugging()) console.table(steps());
  for (const resolve of onFirstFrame.splice(0)) resolve();
}

/**
 * Resolves once the other side's first frame is shown, or after `ms`, whichever comes first:
 * what a call link's page waits for before it loads its lists, so that they do not compete
 * with the call's start.
 */
export function firstFrameOr(ms) {
  if ('first_remote_frame' in marks) return Promise.resolve();
  return new Promise((resolve) => {
    onFirstFrame.push(resolve);
    setTimeout(resolve, ms);
  });
}

/** The marks in time order, each with the time since the mark before it. */
export function steps() {
  let before = 0;
  return Object.entries(marks).sort(([, a], [, b]) => a - b).map(([name, at]) => {
    const step = { name, at, since_previous: Math.round((at - before) * 10) / 10 };
    before = at;
    return step;
  });
}

function debugging() {
  try {
    return Boolean(localStorage.getItem('teleconsult.debug'));
  } catch {
    return false;
  }
}

/** Mark `ice_connected` when this peer connection first connects. */
export function watchConnection(pc) {
  const check = () => {
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') mark('ice_connected');
  };
  pc.addEventListener('iceconnectionstatechange', check);
}

/** Mark `first_remote_frame` when any remote video presents its first frame. */
function watchRemoteVideos() {
  const seen = new WeakSet();
  const watch = (video) => {
    if (seen.has(video) || !video.requestVideoFrameCallback) return;
    seen.add(video);
    video.requestVideoFrameCallback((now, meta) => {
      if (!('first_remote_frame' in marks)) Object.assign(firstFrame, { width: meta.width, height: meta.height });
      mark('first_remote_frame');
    });
  };
  new MutationObserver(() => {
    if ('first_remote_frame' in marks) return;
    document.querySelectorAll('video[data-testid="remote-video"]').forEach(watch);
  }).observe(document.documentElement, { childList: true, subtree: true });
}

watchRemoteVideos();
window.teleconsultTimings = { marks, steps, firstFrame };
