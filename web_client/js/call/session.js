// One call as a state machine: our membership of a consult room (join, rejoin, leave), who else
// is in it, and the media path we are on. No DOM: the view (view.js) renders what it holds.
//
//   idle ──join──► joining ──ack──► in_call(p2p) ──media-path relay──► in_call(relay)
//                     │                 │  ▲                                │
//                     │    socket lost, │  │ ack        relay broke for good │
//                     │    relay broke  ▼  │                                 │
//                     └──socket lost──► rejoining ◄──────────────────────────┘
//
//   joining | in_call | rejoining ──`replaced`──► replaced ──"continue here"──► joining
//   joining | in_call | rejoining | replaced ──consult over, `session-ended`──► ended
//   joining | rejoining ──join refused for good──► failed
//   any ──leave, back to the list, removed from the consult──► idle
//
// A join or rejoin refused with `rate_limited`, `busy` or `conflict`, or left unanswered, stays
// where it is and tries again with backoff (1 s, 2 s, 4 s … 15 s). Every change of state goes
// through transition(), which refuses a move the table does not list and logs each one with debug() (js/log.js).
//
// The media path is an object (paths/p2p.js or paths/relay.js) behind one interface; the
// session opens the path the server names, hands it the room's events, and shows what it
// receives as each participant's streams. The server decides the path: a direct link that does
// not come up is reported (`p2p-failed`) and checked again on the server's request
// (`p2p-check`); a consult on the relay stays there.

import { api } from '../api.js';
import { takeCallStart } from '../call-link.js';
import { olderThan } from '../consults.js';
import { debug } from '../log.js';
import { notify, request, whenConnected } from '../socket.js';
import { mark } from '../timings.js';
import { LocalMedia, mediaErrorKey } from './local-media.js';
import { P2pPath } from './paths/p2p.js';
import { RelayPath } from './paths/relay.js';
import { SenderAdaptation } from './sender-adaptation.js';

/** A consult in one of these statuses is over: the call ends. */
export const FINISHED = new Set(['ended', 'declined', 'cancelled', 'expired']);
/** Join refusals that pass: the view stays and the join is tried again. `timeout`: no answer in
 * time (e.g. the join waited for the consult's last room to finish a long recording); the server
 * may still have let us in, and joining again from the same connection is harmless. */
/** A TURN refusal within this long of the rejoin that renewed the credentials is not expiry but a
 * misconfiguration (TURN_SECRET differs from coturn's static-auth-secret, clocks disagree): said,
 * not retried. */
const TURN_RENEW_GAP_MS = 60_000;
/** A request for fresh TURN credentials that failed is tried again this much later. */
const TURN_RENEW_RETRY_MS = 10_000;
/** With iceTransportPolicy 'all', how long a path may take to connect (over host candidates)
 * after a TURN refusal before the refusal counts. */
const TURN_GRACE_MS = 5000;
const RETRYABLE = new Set(['rate_limited', 'busy', 'conflict', 'timeout']);
/** The first wait before trying a refused join again; it doubles up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;
/**
 * Each wait is drawn up to this fraction shorter, so that the pages a busy or restarted server
 * refused all at once do not all come back in the same instant again.
 */
const RETRY_JITTER = 0.2;
/** After the server keeps the direct path despite a `p2p-failed`, wait this long to say it again. */
const P2P_REPORT_INTERVAL_MS = 30000;

/** @typedef {'idle'|'joining'|'in_call'|'rejoining'|'replaced'|'ended'|'failed'} CallState */

/** Each state and the states it may move to. */
const TRANSITIONS = {
  idle: ['joining'],
  joining: ['in_call', 'rejoining', 'replaced', 'ended', 'failed', 'idle'],
  in_call: ['in_call', 'rejoining', 'replaced', 'ended', 'idle'],
  rejoining: ['in_call', 'replaced', 'ended', 'failed', 'idle'],
  replaced: ['joining', 'ended', 'idle'],
  ended: ['joining', 'idle'],
  failed: ['joining', 'idle'],
};

/** In these states we are in the consult room or on our way in. */
const ACTIVE = new Set(['joining', 'in_call', 'rejoining']);

/**
 * Someone else in the room: who they are (null until we are told) and the streams we receive
 * from them, by source.
 * @typedef {{user: object|null, streams: Map<'camera'|'second', MediaStream>,
 *   audioOnly?: {reason: 'link'|'chosen'}|null}} Participant
 */

/**
 * What the session tells its view. Every callback is optional.
 * @typedef {object} SessionEvents
 * @property {() => void} [change]  anything shown may have changed
 * @property {(consult: object|null) => void} [consult]  the consult as the server sent it last
 * @property {(recording: object|null, o: {announce: boolean, fresh: boolean}) => void} [recording]
 *   the server's recording state (`fresh`: from a join ack, which replaces whatever was shown)
 * @property {(requestedBy: object|null) => void} [consentAsked]
 * @property {(notes: object[]) => void} [notes]  the notes so far (join ack)
 * @property {(note: object) => void} [noteAdded]
 * @property {() => void} [stopped]  media and membership are gone (ended, replaced, left …)
 * @property {(o: {removed: boolean}) => void} [closed]  back to the list (removed: by the server)
 */

export class CallSession {
  /**
   * @param {object} o
   * @param {import('../socket.js').Socket} o.socket
   * @param {SessionEvents} o.on
   */
  constructor({ socket, on }) {
    this.socket = socket;
    this.on = on;
    /** @type {CallState} */
    this.state = 'idle';
    this.consultId = null;
    this.consult = null;
    this.selfId = null; // our peer id in the room, from the join ack
    this.iceServers = [];
    this.iceTransportPolicy = 'all'; // 'relay': media only through TURN (ICE_TRANSPORT_POLICY)
    this.turnRenewedAt = -Infinity; // when a TURN refusal last made us rejoin for new credentials
    this.iceRenewTimer = null; // asks for fresh TURN credentials before ours expire (renewIce)
    this.media = new LocalMedia();
    this.mediaStarting = Promise.resolve(); // the camera/mic request of the current join
    /** @type {P2pPath|RelayPath|null} */
    this.path = null;
    this.pathKind = 'p2p'; // what the view shows: 'relay' from the moment the server says so
    /** @type {Map<string, Participant>} */
    this.people = new Map();
    // peer_ids that left: a relay offer already on its way may still list their tracks, and must
    // not bring them back. A peer id is its connection's socket id, so it comes back when that
    // connection joins again (a rejoin for fresh TURN credentials, after the relay broke, after
    // the room moved): `peer-joined` or a join ack naming it takes it off this list.
    this.departed = new Set();
    this.moved = new Set(); // user ids whose connection was just replaced: their return is no news
    this.attempts = 0; // join attempts; only the newest may act on its answer
    this.joinPending = false; // a join is on its way: room events wait for its ack
    this.replacedMeanwhile = false; // a `replaced` came while it was: it counts if the join fails
    this.early = []; // [event, payload] that arrived while our join ack was on its way
    this.retry = null; // {code, delayMs} while a refused join waits to be tried again
    this.message = null; // {key, params, kind, error}: the line the user reads
    this.lastP2pReport = 0;
    // Our sending side follows the link (docs/network.md): steps the video, goes audio-only.
    this.adaptation = new SenderAdaptation({
      media: this.media,
      connections: () => this.path?.connections() ?? { sending: [], receiving: [] },
      onModeChange: (mode) => this.mediaModeChanged(mode),
    });
    /** @type {Map<string, Function>} socket event → our handler (to replay held events) */
    this.handlers = new Map();
    this.listen();
  }

  // ---- the state machine ----------------------------------------------------------------------

  /**
   * Move to `to` (with the media path, for in_call), if the table allows it from here.
   * @param {CallState} to
   * @param {{path?: 'p2p'|'relay', reason?: string}} [o]
   * @returns {boolean} whether it moved
   */
  transition(to, { path, reason = '' } = {}) {
    const from = this.state;
    const label = (state, kind) => (state === 'in_call' ? `in_call(${kind})` : state);
    const before = label(from, this.pathKind);
    if (!TRANSITIONS[from].includes(to)) {
      debug('call: refused', before, '→', to, reason);
      return false;
    }
    if (path) this.pathKind = path;
    debug('call:', before, '→', label(to, this.pathKind), reason);
    this.state = to;
    this.emit();
    return true;
  }

  get active() {
    return ACTIVE.has(this.state);
  }

  emit() {
    this.on.change?.();
  }

  /** The line the user reads; `error` (a refusal) becomes its {reason} in the current language. */
  say(key, params = {}, kind = 'info', error = null) {
    this.message = { key, params, kind, error };
    this.emit();
  }

  // ---- socket events --------------------------------------------------------------------------

  listen() {
    const s = {
      on: (event, handler) => {
        this.handlers.set(event, handler);
        this.socket.on(event, handler);
      },
    };
    const mine = (p) => this.active && p?.consult_id === this.consultId;
    const room = this.roomEvents();
    for (const kind of Object.keys(room)) {
      s.on(kind, (p) => {
        if (!mine(p)) return;
        if (this.state === 'in_call') {
          room[kind](p);
        } else if (this.joinPending) {
          // The others hear of us before our ack arrives: until then we know neither our own
          // peer id (who is polite) nor whether an event is about us.
          debug(`${kind} before join ack, held`);
          this.early.push([kind, p]);
        } // else: left over from a membership we gave up (before a rejoin)
      });
    }
    s.on('consult-state', ({ consult }) => {
      if (!(this.active || this.state === 'replaced') || consult?.id !== this.consultId) return;
      if (olderThan(consult, this.consult)) return;
      this.setConsult(consult);
      if (FINISHED.has(consult.status)) return this.finish(consult);
      if (this.state === 'in_call' && consult.media_mode === 'relay') this.usePath('relay', 'consult-state');
      this.emit();
    });
    // Our invitation into this consult was withdrawn (or declined elsewhere): the server took
    // us out of the room; back to the list.
    s.on('removed-from-consult', (p) => {
      if (!mine(p)) return;
      this.stopAll();
      this.close({ removed: true });
    });
    // The signaling process that held the consult's room died (several processes behind a load
    // balancer): the room opens again in a live process when we join again.
    s.on('rejoin', (p) => {
      if (!mine(p)) return;
      debug('rejoin: the room moved', p?.reason);
      this.rejoin('room moved', 'call.roomMoved');
    });
    // This person opened the consult on another device or tab, which took our place: stop
    // here, and come back only when the user asks (joining again replaces the other in turn).
    s.on('replaced', (p) => {
      if (!mine(p)) return;
      if (this.joinPending) {
        // About the place this connection held before the join now on its way: the server took
        // the other connection's join first, so ours, if it succeeds, is the newest and counts.
        debug('replaced while our join is on its way: superseded by it, if it succeeds');
        this.replacedMeanwhile = true;
        return;
      }
      this.beReplaced(p.reason ?? 'replaced');
    });
    // The server is about to close the socket (token expired, user disabled); the page goes to
    // the sign-in page (page.js). Stop the call at once; nothing rejoins.
    s.on('session-ended', (p) => {
      if (!(this.active || this.state === 'replaced')) return;
      this.message = null;
      this.stopAll();
      this.transition('ended', { reason: `session ended: ${p?.code ?? ''}` });
    });
    // The server asks, before it moves the consult off the direct path, how our link is now.
    s.on('p2p-check', (p, ack) => {
      const answer = this.checkLink(p);
      debug('p2p-check', p?.peer_id, p?.generation, '→', answer);
      if (typeof ack === 'function') ack(answer);
    });
    s.on('disconnect', () => {
      if (!this.active) return;
      // The server forgets our peer id with the connection, and tells the others we left. The
      // links may carry on meanwhile; after the reconnect we join afresh.
      if (this.joinPending && this.replacedMeanwhile) {
        this.beReplaced('replaced, and our join was lost with the connection');
        return;
      }
      this.attempts += 1; // a join on its way is lost with the connection
      this.joinPending = false;
      if (this.state !== 'rejoining') this.transition('rejoining', { reason: 'socket disconnected' });
      else this.emit();
    });
    s.on('connect', () => {
      if (this.state === 'rejoining') this.enterRoom();
    });
  }

  /** Events that came before this session listened (a call link's early join), in order. */
  replay(events) {
    for (const [event, args] of events) this.handlers.get(event)?.(...args);
  }

  /** Events about the consult room, by name; they wait for our join ack (see listen()). */
  roomEvents() {
    return {
      'peer-joined': (p) => this.peerJoined(p),
      'peer-left': (p) => this.peerLeft(p),
      signal: (p) => this.routeSignal(p),
      'media-path': (p) => this.usePath(p.path, p.reason ?? 'media-path'),
      // The media node carrying our relay died; the server moved the consult to another one:
      // publish and subscribe again on fresh connections (docs/protocol.md, relay-restart).
      'relay-restart': (p) => this.restartRelay(p.reason ?? 'relay-restart'),
      'relay-offer': (p) => {
        this.usePath('relay', 'relay-offer');
        if (this.path?.kind === 'relay') this.path.handle('relay-offer', p);
      },
      'recording-consent-requested': (p) => this.on.consentAsked?.(p.requested_by ?? null),
      'recording-state': (p) => this.on.recording?.(p.recording ?? null, { announce: true, fresh: false }),
      'note-added': (p) => this.on.noteAdded?.(p.note),
      'peer-media-mode': (p) => this.peerMediaMode(p),
    };
  }

  beReplaced(reason) {
    this.message = null;
    this.stopAll();
    this.transition('replaced', { reason });
  }

  // ---- joining --------------------------------------------------------------------------------

  /**
   * Join `consultId`: camera/mic and the room at once (the join ack is taken once both are
   * there, see enterRoom). Also "continue here" after `replaced`. A call link started both
   * before the page was ready (call-link.js): they are taken over, not asked for again.
   */
  async join(consultId) {
    const fresh = consultId !== this.consultId || this.state !== 'replaced';
    if (!this.transition('joining', { reason: fresh ? 'join' : 'take over' })) return;
    this.consultId = consultId;
    this.message = null;
    this.pathKind = 'p2p';
    if (fresh) this.consult = null;
    this.emit();
    const early = fresh ? takeCallStart(consultId, this.socket) : null;
    this.mediaStarting = this.media.start(early?.media).then((problem) => problem && this.say(problem, {}, 'warn'));
    await this.enterRoom(early);
  }

  /**
   * Send `join` (again) and take the ack; used by the first join and by every rejoin. `early`:
   * a call link's join already sent, whose ack counts as this first attempt's.
   * @param {import('../call-link.js').CallStart|null} [early]
   */
  async enterRoom(early = null) {
    const attempt = ++this.attempts;
    const consultId = this.consultId;
    const current = () => attempt === this.attempts && (this.state === 'joining' || this.state === 'rejoining');
    // Connections go; the participants (and their tiles) stay until the ack says who is here.
    this.closePath();
    this.selfId = null;
    this.early = [];
    this.retry = null;
    this.emit();
    for (let refusals = 0; ; refusals += 1) {
      const sent = early?.join;
      if (!sent) await whenConnected(this.socket);
      if (!current()) return;
      let ack;
      this.joinPending = true;
      this.replacedMeanwhile = false;
      if (early) {
        this.replay(early.events); // room events held for the ack, as if we had been listening
        early = null;
      }
      try {
        ack = await (sent ?? request(this.socket, 'join', { consult_id: consultId }));
        if (current()) mark('join_acked');
      } catch (err) {
        if (!current()) return;
        this.joinPending = false;
        if (this.replacedMeanwhile) {
          this.beReplaced('replaced, and our join failed'); // the other connection keeps it
          return;
        }
        if (!this.socket.connected) {
          // Lost the socket mid-join: the 'connect' handler tries again.
          if (this.state !== 'rejoining') this.transition('rejoining', { reason: 'socket lost during join' });
          return;
        }
        if (!RETRYABLE.has(err.code)) {
          this.fail(err);
          return;
        }
        const backoff = Math.min(RETRY_FIRST_MS * 2 ** refusals, RETRY_MAX_MS);
        const delayMs = Math.round(backoff * (1 - RETRY_JITTER * Math.random()));
        debug('call: join refused', err.code, `- trying again in ${delayMs} ms`);
        this.retry = { code: err.code, delayMs };
        this.say('call.joinRetrying', {}, 'warn', err);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        continue;
      }
      // Camera and microphone were asked for while the join was on its way (a first join) or are
      // there already (a rejoin): the links start with them. Room events that arrive meanwhile
      // wait in `early`, as before the ack.
      await this.mediaStarting;
      if (!current()) {
        // The user stepped out while the join was on its way: do not stay behind in the room.
        if (!this.active) notify(this.socket, 'leave', { consult_id: ack.consult?.id ?? consultId });
        return;
      }
      this.joinPending = false;
      this.joined(ack);
      return;
    }
  }

  joined(ack) {
    this.selfId = ack.peer_id;
    this.iceServers = ack.ice_servers ?? [];
    this.iceTransportPolicy = ack.ice_transport_policy === 'relay' ? 'relay' : 'all';
    this.scheduleIceRenewal(ack.ice_renew_after_seconds);
    if (ack.consult && !olderThan(ack.consult, this.consult)) this.consult = ack.consult;
    if (this.retry) {
      this.retry = null;
      if (this.message?.key === 'call.joinRetrying') this.message = null;
    }
    this.on.consult?.(this.consult);
    if (this.consult && FINISHED.has(this.consult.status)) {
      this.finish(this.consult);
      return;
    }
    // The server's recording state replaces ours on every join: after a server restart the
    // recording we showed may be gone.
    this.on.recording?.(ack.recording ?? null, { announce: false, fresh: true });
    this.on.notes?.(ack.notes ?? []);
    const relay = ack.media_path === 'relay' || this.consult?.media_mode === 'relay';
    const peers = (ack.peers ?? []).filter((p) => p.peer_id !== this.selfId);
    debug('joined as', this.selfId, 'with', peers.map((p) => p.peer_id));
    const here = new Set(peers.map((p) => p.peer_id));
    for (const peerId of [...this.people.keys()]) if (!here.has(peerId)) this.forget(peerId);
    const kind = relay ? 'relay' : 'p2p';
    if (!this.transition('in_call', { path: kind, reason: 'join ack' })) return;
    this.openPath(kind);
    // They were here first: we arrived, so we make the first offer to each of them.
    for (const peer of peers) {
      this.departed.delete(peer.peer_id); // left and joined again while we were away
      this.meet(peer, { initiator: true });
    }
    const early = this.early;
    this.early = [];
    const handlers = this.roomEvents();
    for (const [kind_, payload] of early) if (this.state === 'in_call') handlers[kind_](payload);
    this.adaptation.start();
    if (this.adaptation.audioOnly) this.tellMediaMode(); // a rejoin: the others know us anew
    this.emit();
  }

  /** The join was refused for good (not permitted, consult over, room full …). */
  fail(err) {
    console.warn('join refused', err.code, err.message);
    this.stopAll();
    this.message = { key: 'call.joinFailed', params: {}, kind: 'error', error: err };
    this.transition('failed', { reason: err.code });
  }

  /**
   * A TURN server refused the credentials of our last join (paths/turn.js). Most likely they
   * expired during a long call: rejoin, whose ack carries fresh ones. Refused again right after
   * that, it is the set-up, not the time: say so plainly instead of rejoining in a loop. When
   * the page may also connect without TURN (policy 'all'), a path that connects anyway is left
   * alone.
   */
  turnRefused({ url, code }) {
    console.warn('TURN refused the credentials', code, url);
    if (this.iceTransportPolicy !== 'relay') {
      const path = this.path;
      setTimeout(() => {
        if (this.path !== path) return;
        if (path?.state === 'connected') debug('TURN refusal ignored: connected without TURN');
        else this.renewTurn();
      }, TURN_GRACE_MS);
      return;
    }
    this.renewTurn();
  }

  renewTurn() {
    if (this.state !== 'in_call') return; // a rejoin is on its way already
    const now = Date.now();
    if (now - this.turnRenewedAt < TURN_RENEW_GAP_MS) {
      if (this.message?.key !== 'call.turn.refused') this.say('call.turn.refused', {}, 'error');
      return;
    }
    this.turnRenewedAt = now;
    this.rejoin('turn refused', 'call.turn.renewing');
  }


  /**
   * Ask for fresh TURN credentials `seconds` from now (the server says when: TURN_RENEW_PERCENT
   * of their lifetime; null: never), before those we hold expire.
   * @param {number|null|undefined} seconds
   */
  scheduleIceRenewal(seconds) {
    clearTimeout(this.iceRenewTimer);
    this.iceRenewTimer = null;
    if (typeof seconds !== 'number' || !(seconds >= 0)) return;
    // setTimeout fires at once beyond 2^31 - 1 ms (about 24.8 days): wait that long at most.
    this.iceRenewTimer = setTimeout(() => this.renewIce(), Math.min(seconds * 1000, 2 ** 31 - 1));
  }

  /**
   * Fresh TURN credentials for the connections of this call, without leaving it: the path
   * gathers with them (an ICE restart on the direct path) and every later connection uses them.
   * Failed (socket down, refused), it is tried again a little later; a rejoin meanwhile brings
   * fresh ones anyway.
   */
  async renewIce() {
    this.iceRenewTimer = null;
    if (this.state !== 'in_call' || !this.selfId) return;
    const attempt = this.attempts;
    const consultId = this.consultId;
    let ack;
    try {
      ack = await request(this.socket, 'ice-servers', { consult_id: consultId });
    } catch (err) {
      debug('ice-servers refused', err.code, err.message);
      if (attempt === this.attempts && this.state === 'in_call') {
        this.iceRenewTimer = setTimeout(() => this.renewIce(), TURN_RENEW_RETRY_MS);
      }
      return;
    }
    if (attempt !== this.attempts || this.state !== 'in_call' || consultId !== this.consultId) return;
    debug('fresh TURN credentials for the', this.pathKind, 'path');
    this.iceServers = ack.ice_servers ?? [];
    this.path?.renewIce(this.iceServers);
    this.scheduleIceRenewal(ack.ice_renew_after_seconds);
  }

  /** The relay connections broke for good (or the TURN credentials are out of date, or the room
   * moved with a dead signaling process): leave and join again, which rebuilds them with the
   * credentials of the new join ack. */
  async rejoin(reason, messageKey = 'call.relay.rejoining') {
    if (this.state !== 'in_call') return;
    this.say(messageKey, {}, 'warn');
    const wasIn = Boolean(this.selfId);
    this.selfId = null;
    this.closePath();
    if (!this.transition('rejoining', { reason })) return;
    const attempt = this.attempts;
    if (wasIn && this.socket.connected) {
      // Wait for the leave to be taken before joining again: the server handles events concurrently.
      await request(this.socket, 'leave', { consult_id: this.consultId }).catch(() => {});
    }
    // A socket drop meanwhile started its own rejoin (see 'disconnect' and 'connect').
    if (this.state === 'rejoining' && attempt === this.attempts) this.enterRoom();
  }

  // ---- participants -----------------------------------------------------------------------------

  /** A remote participant is in the room: known from now on, with a direct link on p2p. */
  meet(peer, { initiator = false } = {}) {
    const known = this.people.get(peer.peer_id);
    const user = peer.user ?? known?.user ?? null;
    if (known) known.user = user;
    else this.people.set(peer.peer_id, { user, streams: new Map() });
    this.path?.addPeer(peer.peer_id, { initiator });
    this.emit();
  }

  /** They left: their link and every stream of theirs go. */
  forget(peerId) {
    this.people.delete(peerId);
    this.path?.removePeer(peerId);
    this.emit();
  }

  peerJoined({ peer }) {
    if (!peer || peer.peer_id === this.selfId) return;
    // The same connection joining again after it left (same peer id): its tracks count again.
    this.departed.delete(peer.peer_id);
    this.meet(peer); // met already (in our join ack, or by its offer): only named here
    if (this.adaptation.audioOnly) this.tellMediaMode(); // the newcomer does not know yet
    const userId = peer.user?.id;
    if (userId !== undefined && this.moved.delete(userId)) return; // "moved" said it already
    this.say('call.peer.joined', { name: peer.user?.display_name ?? '' });
  }

  peerLeft({ peer_id: peerId, reason }) {
    const user = this.people.get(peerId)?.user;
    this.departed.add(peerId);
    this.forget(peerId);
    const name = user?.display_name ?? '';
    if (reason === 'replaced') {
      // The same person, now on another device or tab: nobody was lost.
      if (user?.id !== undefined) this.moved.add(user.id);
      this.say('call.peer.moved', { name }, 'info');
    } else {
      this.say(reason === 'disconnected' ? 'call.peer.lost' : 'call.peer.left', { name }, 'warn');
    }
  }

  /** A stream a path receives, on its participant (a relay offer may name one we did not meet). */
  showTrack({ peerId, source, stream, user }) {
    if (this.departed.has(peerId)) return;
    let person = this.people.get(peerId);
    if (!person) this.people.set(peerId, person = { user: user ?? null, streams: new Map() });
    else if (user) person.user = user;
    person.streams.set(source, stream);
    this.emit();
  }

  /** A second source stopped; a camera stays on its tile until its participant leaves. */
  trackGone({ peerId, source }) {
    if (source !== 'second') return;
    this.people.get(peerId)?.streams.delete('second');
    this.emit();
  }

  // ---- media paths ------------------------------------------------------------------------------

  openPath(kind) {
    const consultId = this.consultId;
    /** @type {P2pPath|RelayPath} */
    let path;
    const ours = (fn) => (...args) => (this.path === path ? fn(...args) : undefined);
    const common = {
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      onTurnRefused: ours((refusal) => this.turnRefused(refusal)),
      localStream: this.media.stream,
      second: this.media.second,
      onTrack: ours((track) => this.showTrack(track)),
      onTrackGone: ours((gone) => this.trackGone(gone)),
      onStateChange: ours(() => this.emit()),
    };
    if (kind === 'relay') {
      path = new RelayPath({
        ...common,
        request: (event, payload) => request(this.socket, event, { consult_id: consultId, ...payload }),
        notify: (event, payload) => {
          if (this.socket.connected) notify(this.socket, event, { consult_id: consultId, ...payload });
        },
        onError: ours((err) => {
          console.warn('relay refused', err.code, err.message);
          this.say('call.relay.failed', {}, 'error', err);
        }),
        onFailed: ours(() => this.rejoin('relay failed')),
      });
    } else {
      path = new P2pPath({
        ...common,
        selfId: this.selfId,
        send: (peerId, msg) => this.sendSignal(peerId, msg),
        onFailed: ours((report) => this.reportP2pFailed(report)),
      });
    }
    this.path = path;
    path.start();
  }

  closePath() {
    this.path?.close();
    this.path = null;
  }

  /** Follow the server onto the relay (never back: a consult on the relay stays there). */
  usePath(kind, reason) {
    if (kind !== 'relay' || this.state !== 'in_call' || !this.selfId) return;
    if (this.pathKind === 'relay' && this.path) return;
    this.transition('in_call', { path: 'relay', reason });
    this.closePath();
    this.openPath('relay');
    this.emit();
  }

  /** Our relay restarted elsewhere: drop the old relay connections and open new ones. */
  restartRelay(reason) {
    if (this.state !== 'in_call' || !this.selfId) return;
    this.transition('in_call', { path: 'relay', reason });
    this.closePath();
    this.openPath('relay');
    this.emit();
  }

  /** Hand a signal to its peer's link; an offer may come before (or without) peer-joined. */
  routeSignal(signal) {
    if (this.path?.kind !== 'p2p') return; // a late signal from the direct path we left
    if (!this.path.has(signal.from)) this.meet({ peer_id: signal.from, user: null });
    this.path.handle('signal', signal);
  }

  sendSignal(to, msg) {
    // While the socket is down, drop signals instead of letting socket.io buffer them: after
    // the reconnect we rejoin under a new peer id and renegotiate from scratch anyway.
    if (!this.socket.connected || !this.selfId) return;
    notify(this.socket, 'signal', { consult_id: this.consultId, to, ...msg });
  }

  /**
   * A direct link does not come up: ask the server to carry the media. It checks with us first
   * (`p2p-check`) and may say no; the link keeps trying and we may say it again later.
   */
  async reportP2pFailed({ peerId, generation }) {
    if (this.state !== 'in_call' || this.pathKind !== 'p2p' || !this.selfId || !this.socket.connected) return;
    if (Date.now() - this.lastP2pReport < P2P_REPORT_INTERVAL_MS) return;
    this.lastP2pReport = Date.now();
    debug('reporting p2p-failed', peerId, 'generation', generation);
    const payload = { consult_id: this.consultId, peer_id: peerId, generation };
    try {
      const ack = await request(this.socket, 'p2p-failed', payload);
      if (ack.ignored) debug('p2p-failed ignored:', ack.ignored);
      if (ack.media_path === 'relay') this.usePath('relay', 'p2p-failed ack');
    } catch (err) {
      console.warn('p2p-failed refused', err.code, err.message); // the links keep trying
    }
  }

  /** The answer to `p2p-check`: how our direct link to that peer is doing now. */
  checkLink(p) {
    const generation = Number.isInteger(p?.generation) ? p.generation : 0;
    const ours = this.state === 'in_call' && p?.consult_id === this.consultId;
    const now = ours && this.path?.kind === 'p2p' ? this.path.check(p.peer_id) : null;
    return now ?? { state: 'gone', generation };
  }

  /** The consult as the server sent it last (an event, an ack, a REST answer); a view older
   * than the one we hold (an ack overtaken by a `consult-state`) is ignored. */
  setConsult(consult) {
    if (olderThan(consult, this.consult)) return;
    this.consult = consult;
    this.on.consult?.(consult);
    this.emit();
  }

  // ---- what the user does -----------------------------------------------------------------------

  toggle(kind) {
    this.media.toggle(kind);
    this.emit();
  }

  /** Audio-only by hand (the call bar's button), or video again. */
  chooseAudioOnly(audioOnly) {
    this.adaptation.choose(audioOnly);
    this.emit();
  }

  /** Our adaptation went audio-only or back to video: say so here and tell the others. */
  mediaModeChanged({ audioOnly, reason }) {
    if (audioOnly && reason === 'link') this.say('network.audioOnly.self', {}, 'warn');
    else if (!audioOnly && this.message?.key === 'network.audioOnly.self') this.say('network.videoBack.self', {}, 'info');
    this.tellMediaMode();
    this.emit();
  }

  tellMediaMode() {
    if (this.state !== 'in_call' || !this.selfId || !this.socket.connected) return;
    const { audioOnly } = this.adaptation;
    const reason = this.adaptation.plan.reason ?? (this.adaptation.chosen ? 'chosen' : 'link');
    request(this.socket, 'media-mode', { consult_id: this.consultId, audio_only: audioOnly, reason })
      .catch((err) => debug('media-mode refused', err.code, err.message));
  }

  /** Another participant went audio-only, or back to video. */
  peerMediaMode({ peer_id: peerId, audio_only: audioOnly, reason }) {
    const person = this.people.get(peerId);
    if (!person) return;
    const was = Boolean(person.audioOnly);
    person.audioOnly = audioOnly ? { reason } : null;
    const name = person.user?.display_name ?? '';
    if (audioOnly && !was) this.say(reason === 'chosen' ? 'network.audioOnly.peerChose' : 'network.audioOnly.peer', { name }, 'info');
    else if (!audioOnly && was) this.say('network.videoBack.peer', { name }, 'info');
    this.emit();
  }

  /** Share a second source; a refusal becomes a message (closing the screen picker is none). */
  async startSecond(option) {
    let second;
    try {
      second = await this.media.openSecond(option, () => this.stopSecond());
    } catch (err) {
      console.warn('second source failed', err);
      if (err?.name !== 'NotAllowedError' || option.kind !== 'screen') {
        this.say('second.failed', { reasonKey: mediaErrorKey(err) }, 'warn');
      }
      return;
    }
    if (!this.active) {
      this.media.stopSecond();
      return;
    }
    this.path?.setSecond(second);
    this.emit();
  }

  stopSecond() {
    if (!this.media.second) return;
    this.media.stopSecond();
    this.path?.setSecond(null);
    this.emit();
  }

  /** End the consult for everybody (`skip`: the assigned specialist gives no conclusion on
   * purpose); rejects with the server's error. */
  async hangUp(conclusion, skip = false) {
    const consult = await api.end(this.consultId, conclusion, skip);
    this.finish(consult);
  }

  /** Leave the room without ending the consult (e.g. waiting too long for the other side). */
  leave() {
    if (this.active && this.selfId) notify(this.socket, 'leave', { consult_id: this.consultId });
    this.stopAll();
    this.close();
  }

  /** The consult is over (ended, cancelled …): hang up here and say so. */
  finish(consult) {
    if (!(this.active || this.state === 'replaced')) return;
    this.consult = consult;
    this.message = null; // the ended banner says it all; "X joined" would only confuse
    // No 'leave': the server empties the room of an ended or cancelled consult by itself.
    this.stopAll();
    this.transition('ended', { reason: `consult ${consult?.status}` });
  }

  /** Back to the list (from any state). */
  close({ removed = false } = {}) {
    if (this.state !== 'idle') this.transition('idle', { reason: removed ? 'removed' : 'closed' });
    this.consultId = null;
    this.on.closed?.({ removed });
  }

  /** Membership and media go: connections, streams, camera, microphone, second source. */
  stopAll() {
    this.attempts += 1; // a join on its way must not bring any of it back
    this.scheduleIceRenewal(null);
    this.joinPending = false;
    this.early = [];
    this.retry = null;
    this.closePath();
    this.people.clear();
    this.selfId = null;
    this.pathKind = 'p2p';
    this.adaptation.stop();
    this.media.stop();
    this.on.stopped?.();
    this.emit();
  }
}
