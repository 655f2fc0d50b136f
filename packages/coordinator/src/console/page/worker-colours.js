// Colours: a stable colour per worker id, never in the red kept for alarms. Each id prefers a palette
// slot by its FNV-1a hash and takes the next free one if another worker present holds it; it keeps
// that colour for as long as it is in the snapshots (ids are placed in sorted order, so a reload
// shows the same colours). Past the palette, a hue from the hash.

import { el } from './dom.js';

const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#edc948', '#76b7b2',
  '#9c755f', '#ff9da7', '#bab0ac', '#a0cbe8', '#bcbd22', '#e377c2',
];
/** id → colour, for the ids present. */
const colourOf = new Map();
/** palette slot → id holding it. */
const slots = new Map();

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final mix, so that ids differing in their last character land far apart.
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return h >>> 0;
}
function hashedColour(id) {
  const h = fnv1a(id);
  return `hsl(${28 + (h % 304)} ${52 + ((h >>> 12) % 28)}% ${50 + ((h >>> 20) % 16)}%)`;
}
/** Gives every id present a colour (sorted, so that the same set always gets the same colours) and frees the colours of ids gone. */
export function placeColours(ids) {
  const present = new Set(ids);
  for (const [slot, id] of slots) {
    if (!present.has(id)) {
      slots.delete(slot);
      colourOf.delete(id);
    }
  }
  for (const id of [...present].sort()) {
    if (colourOf.has(id)) continue;
    const start = fnv1a(id) % PALETTE.length;
    let placed = false;
    for (let k = 0; k < PALETTE.length && !placed; k++) {
      const slot = (start + k) % PALETTE.length;
      if (!slots.has(slot)) {
        slots.set(slot, id);
        colourOf.set(id, PALETTE[slot]);
        placed = true;
      }
    }
    if (!placed) colourOf.set(id, hashedColour(id));
  }
}
export function colour(id) {
  if (id === null || id === undefined || id === '') return '';
  // An id not in the snapshot (a plan naming a worker the last snapshot did not list yet).
  return colourOf.get(id) ?? hashedColour(id);
}

/** A small square in the worker's colour (hollow for nobody). */
export function swatch(id) {
  const s = el('span', id ? 'swatch' : 'swatch unowned');
  if (id) s.style.backgroundColor = colour(id);
  return s;
}
