// What the map's overlays show, owned here and nowhere else: the year filter, the colouring (by decade
// or by cluster, never both) and the selection whose posters stay lit. Every change goes through a
// setter, which announces it with the "look" event (app.js lists the events): the renderer composes its
// overlays anew, and the controls (the year fields, the colouring boxes, the legend) follow it.

export function createLook(events) {
  const look = {
    yearFrom: -Infinity,
    yearTo: Infinity,
    colouring: null, // null, "decades" or "clusters"
    selection: null, // {kind, members, mask, ...}: see clusters.js

    /** Show only the posters of the years [from, to]; (-Infinity, Infinity): every poster, (NaN, NaN): only
     * those with no year (logic.js inYearRange). */
    setYears(from, to) {
      if (Object.is(from, look.yearFrom) && Object.is(to, look.yearTo)) return;
      look.yearFrom = from;
      look.yearTo = to;
      events.call("look", null, "years");
    },

    /** Colour the posters by "decades", by "clusters", or not (null): one at a time. */
    setColouring(kind) {
      if (kind === look.colouring) return;
      look.colouring = kind;
      events.call("look", null, "colouring");
    },

    /** Light the posters of `selection.members` and dim the rest; null lights them all. */
    setSelection(selection) {
      if (selection) {
        selection.mask = new Uint8Array(selection.n);
        for (const i of selection.members) selection.mask[i] = 1;
      }
      look.selection = selection;
      events.call("look", null, "selection");
    },

    /** Whether anything is filtered, coloured or selected: overlays are drawn. */
    active() {
      return look.colouring !== null || !!look.selection || look.yearFrom !== -Infinity || look.yearTo !== Infinity;
    },
  };
  return look;
}
