import { zxcvbn, zxcvbnOptions } from "@zxcvbn-ts/core";
import * as common from "@zxcvbn-ts/language-common";
import * as en from "@zxcvbn-ts/language-en";

let configured = false;

/** How guessable a passphrase is: zxcvbn-ts's score (0-4) and its warning, if any. */
export function passphraseStrength(
  passphrase: string,
  userInputs: string[] = [],
): { score: number; warning: string } {
  if (!configured) {
    zxcvbnOptions.setOptions({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
    });
    configured = true;
  }
  const r = zxcvbn(passphrase, [...userInputs, "zmqchat"]);
  return { score: r.score, warning: r.feedback.warning ?? "" };
}
