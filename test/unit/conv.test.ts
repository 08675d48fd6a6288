import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  convKind,
  convName,
  convOfTarget,
  formatConv,
  groupConv,
  groupOf,
  parseConv,
  targetOfConv,
  userConv,
  userOf,
} from "../../core/client/conv.js";
import { convTitle } from "../../tui/state.js";

describe("conversation ids", () => {
  it("format and parse are inverse for users and groups", () => {
    assert.equal(userConv("alice"), "u:alice");
    assert.equal(groupConv("team"), "g:team");
    assert.equal(formatConv("group", "team"), "g:team");
    assert.deepEqual(parseConv(userConv("bob.x")), { kind: "user", name: "bob.x" });
    assert.deepEqual(parseConv(groupConv("ops-1")), { kind: "group", name: "ops-1" });
    assert.equal(convKind("g:team"), "group");
    assert.equal(convName("u:alice"), "alice");
  });

  it("refuses what is not a conversation id", () => {
    for (const bad of ["", "u:", "g:", "alice", "x:alice", "U:alice"]) {
      assert.equal(parseConv(bad), null, bad);
      assert.equal(convKind(bad), null, bad);
      assert.equal(targetOfConv(bad), null, bad);
    }
  });

  it("picks out one kind only", () => {
    assert.equal(groupOf("g:team"), "team");
    assert.equal(groupOf("u:team"), null);
    assert.equal(groupOf(null), null);
    assert.equal(userOf("u:alice"), "alice");
    assert.equal(userOf("g:alice"), null);
    assert.equal(userOf(undefined), null);
  });

  it("maps to and from a send target", () => {
    assert.deepEqual(targetOfConv("u:alice"), { user: "alice" });
    assert.deepEqual(targetOfConv("g:team"), { group: "team" });
    assert.equal(convOfTarget({ user: "alice" }), "u:alice");
    assert.equal(convOfTarget({ group: "team" }), "g:team");
  });

  it("titles a conversation as the TUI shows it", () => {
    assert.equal(convTitle("u:alice"), "alice");
    assert.equal(convTitle("g:team"), "#team");
  });
});
