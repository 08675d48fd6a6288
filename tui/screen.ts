/**
 * The alternate screen, entered and left by hand (Ink 6 has no option for it). `leave` is
 * idempotent and synchronous, so it is safe from an exit or crash handler.
 */
export class TerminalScreen {
  private active = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly input?: NodeJS.ReadStream,
  ) {}

  get isActive(): boolean {
    return this.active;
  }

  /** Alternate screen, cleared, cursor home; bracketed paste on (pastes arrive marked). */
  enter(): void {
    if (this.active) return;
    this.active = true;
    this.out.write("\x1b[?1049h\x1b[H\x1b[2J\x1b[?2004h");
  }

  /** Back to the user's screen as it was: paste mode off, colours reset, cursor shown, cooked input. */
  leave(): void {
    if (!this.active) return;
    this.active = false;
    try {
      if (this.input?.isTTY) this.input.setRawMode(false);
    } catch {
      // The terminal may already be gone (hang-up); nothing left to restore then.
    }
    this.out.write("\x1b[?2004l\x1b[0m\x1b[?25h\x1b[?1049l");
  }
}
