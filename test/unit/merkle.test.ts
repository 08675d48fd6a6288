import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inclusionPath, leafHash, rootFromPath, treeHash, treeWithPaths } from "../../core/crypto/merkle.js";

// The reference inputs and tree heads of RFC 6962's tests (the same hashing as RFC 9162), as
// Certificate Transparency's implementations test against them.
const INPUTS = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
].map((h) => Buffer.from(h, "hex"));
const ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/** Reference inclusion paths: [leaf index (from 0), tree size, path]. */
const PATHS: Array<[number, number, string[]]> = [
  [
    0,
    8,
    [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  ],
  [
    5,
    8,
    [
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
  [2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [
    1,
    5,
    [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  ],
];
const LEAVES = INPUTS.map(leafHash);
const hex = (b: Buffer | null) => b?.toString("hex") ?? null;

describe("the Merkle tree of RFC 9162 (envelope v4's batch signature)", () => {
  it("gives the reference tree heads for sizes 0 to 8", () => {
    for (let n = 0; n <= 8; n++) assert.equal(hex(treeHash(LEAVES.slice(0, n))), ROOTS[n], `size ${n}`);
  });

  it("gives the reference inclusion paths, and each leads from its leaf to the reference root", () => {
    for (const [index, size, path] of PATHS) {
      const made = inclusionPath(index, LEAVES.slice(0, size));
      assert.deepEqual(made.map(hex), path, `leaf ${index} of ${size}`);
      const bytes = path.map((p) => Buffer.from(p, "hex"));
      assert.equal(hex(rootFromPath(LEAVES[index]!, index, size, bytes)), ROOTS[size]);
    }
  });

  it("every leaf of every tree up to 70 leaves proves its place, and only its place", () => {
    const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from([i, i * 7])));
    for (let size = 1; size <= leaves.length; size++) {
      const tree = leaves.slice(0, size);
      const root = treeHash(tree);
      for (let i = 0; i < size; i++) {
        const path = inclusionPath(i, tree);
        assert.ok(rootFromPath(tree[i]!, i, size, path)?.equals(root), `leaf ${i} of ${size}`);
        // Another leaf, another index or another size with the same path: never this root.
        const other = tree[(i + 1) % size]!;
        if (size > 1)
          assert.ok(!rootFromPath(other, i, size, path)?.equals(root), `other leaf at ${i} of ${size}`);
        if (size > 1) assert.ok(!rootFromPath(tree[i]!, (i + 1) % size, size, path)?.equals(root));
        // (The same path may give the same root for another tree size when the leaf sits in
        // the part both trees share: so envelope v4 signs the size with the root.)
        // One hash more or one less: no root at all, or another one.
        const longer = [...path, root];
        assert.ok(!rootFromPath(tree[i]!, i, size, longer)?.equals(root));
        if (path.length > 0) assert.ok(!rootFromPath(tree[i]!, i, size, path.slice(0, -1))?.equals(root));
      }
    }
  });

  it("treeWithPaths gives the same root and paths as treeHash and inclusionPath, for every size up to 70", () => {
    const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from([i])));
    for (let size = 1; size <= leaves.length; size++) {
      const tree = leaves.slice(0, size);
      const { root, paths } = treeWithPaths(tree);
      assert.ok(root.equals(treeHash(tree)));
      assert.deepEqual(
        paths.map((p) => p.map(hex)),
        tree.map((_, i) => inclusionPath(i, tree).map(hex)),
      );
    }
    assert.equal(hex(treeWithPaths(LEAVES).root), ROOTS[8]);
  });

  it("refuses places that are not in the tree, and hashes that are not 32 bytes", () => {
    const path = inclusionPath(1, LEAVES.slice(0, 4));
    for (const [index, size] of [
      [4, 4],
      [-1, 4],
      [0, 0],
      [1.5, 4],
      [1, Number.NaN],
    ] as Array<[number, number]>)
      assert.equal(rootFromPath(LEAVES[1]!, index, size, path), null, `${index} of ${size}`);
    assert.equal(rootFromPath(LEAVES[1]!, 1, 4, [path[0]!.subarray(0, 31), path[1]!]), null);
    assert.throws(() => inclusionPath(4, LEAVES.slice(0, 4)), RangeError);
  });

  it("keeps leaves and nodes apart: an interior node offered as a leaf of a smaller tree proves nothing", () => {
    // The second-preimage attack the 0x00/0x01 prefixes stop: in a tree of 4, the node over
    // leaves 0 and 1 is the left child of the root; offered as "leaf 0 of a tree of 2" with the
    // right child as its path, it would give the same root without the prefixes.
    const four = LEAVES.slice(0, 4);
    const left = treeHash(four.slice(0, 2));
    const right = treeHash(four.slice(2));
    const root = treeHash(four);
    const asLeaf = leafHash(left);
    assert.ok(!rootFromPath(asLeaf, 0, 2, [right])?.equals(root));
    // Positive control: the node itself (what a leaf hash can never equal) would.
    assert.ok(rootFromPath(left, 0, 2, [right])?.equals(root));
  });
});
