// Signaling/negotiation trace for field debugging, off by default:
// run `localStorage.setItem('teleconsult.debug', '1')` in the console and reload to see it.

let enabled = false;
try {
  enabled = localStorage.getItem('teleconsult.debug') === '1';
} catch {
  // storage blocked: stay quiet
}

export function debug(...args) {
  if (enabled) console.debug('[teleconsult]', ...args);
}
