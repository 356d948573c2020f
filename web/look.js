// What the map's overlays show, owned here and nowhere else: the year filter, the category filter, the
// colouring (by decade, by cluster or by a category: one at a time) and the selection whose posters stay lit. Every change goes through a
// setter, which announces it with the "look" event (app.js lists the events): the renderer composes its
// overlays anew, and the controls (the year fields, the colouring boxes, the legend) follow it.

export function createLook(events) {
  const look = {
    yearFrom: -Infinity,
    yearTo: Infinity,
    colouring: null, // null, "decades", "clusters" or "category:NAME"
    only: null, // {category, code}: show only the posters whose value of `category` is `code` (-1: none)
    selection: null, // {kind, members, mask, ...}: see clusters.js

    /** Show only the posters of the years [from, to]; (-Infinity, Infinity): every poster, (NaN, NaN): only
     * those with no year (logic.js inYearRange). */
    setYears(from, to) {
      if (Object.is(from, look.yearFrom) && Object.is(to, look.yearTo)) return;
      look.yearFrom = from;
      look.yearTo = to;
      events.call("look", null, "years");
    },

    /** Show only the posters of `category` (logic.js readCategories) whose code is `code`; null: every one. */
    setOnly(category, code = -1) {
      const same = category ? look.only && look.only.category === category && look.only.code === code : !look.only;
      if (same) return;
      look.only = category ? { category, code } : null;
      events.call("look", null, "only");
    },

    /** Whether poster i passes the category filter. */
    passes(i) {
      return !look.only || look.only.category.codes[i] === look.only.code;
    },

    /** Colour the posters by "decades", by "clusters", by "category:NAME", or not (null): one at a time. */
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
      return look.colouring !== null || !!look.selection || !!look.only || look.yearFrom !== -Infinity
        || look.yearTo !== Infinity;
    },
  };
  return look;
}
