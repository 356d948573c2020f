// look.js: the one owner of what the overlays show, and the "look" event its setters announce.
import assert from "node:assert/strict";
import { test } from "node:test";

import { dispatch } from "d3";

import { createLook } from "../../web/look.js";

function watched() {
  const events = dispatch("look");
  const heard = [];
  events.on("look.test", (what) => heard.push(what));
  return { look: createLook(events), heard };
}

test("each change is announced once, and only a change", () => {
  const { look, heard } = watched();
  assert.equal(look.active(), false); // nothing filtered, coloured or selected: no overlays at all
  look.setYears(1990, 1999);
  look.setYears(1990, 1999);
  look.setColouring("decades");
  look.setColouring("decades");
  assert.deepEqual(heard, ["years", "colouring"]);
  assert.equal(look.active(), true);
});

test("decades and clusters colour one at a time", () => {
  const { look } = watched();
  look.setColouring("decades");
  look.setColouring("clusters");
  assert.equal(look.colouring, "clusters");
  look.setColouring(null);
  assert.equal(look.active(), false);
});

test("a selection lights its members and dims the rest", () => {
  const { look, heard } = watched();
  look.setSelection({ kind: "cluster", cluster: 2, members: Int32Array.from([1, 3]), n: 5 });
  assert.deepEqual(Array.from(look.selection.mask), [0, 1, 0, 1, 0]);
  assert.equal(look.active(), true);
  look.setSelection(null);
  assert.equal(look.selection, null);
  assert.deepEqual(heard, ["selection", "selection"]);
});

test("a category filter shows only the posters of one value, or of none, and is announced once", () => {
  const { look, heard } = watched();
  const genre = { name: "genre", values: ["a", "b"], codes: Int16Array.from([0, 1, -1, 0]) };
  look.setOnly(genre, 0);
  look.setOnly(genre, 0);
  assert.deepEqual([0, 1, 2, 3].map((i) => look.passes(i)), [true, false, false, true]);
  assert.equal(look.active(), true);
  look.setOnly(genre, -1); // the posters with no value
  assert.deepEqual([0, 1, 2, 3].map((i) => look.passes(i)), [false, false, true, false]);
  look.setOnly(null);
  look.setOnly(null);
  assert.deepEqual(heard, ["only", "only", "only"]);
  assert.equal(look.active(), false);
  assert.ok(look.passes(1));
});
