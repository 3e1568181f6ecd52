/** One verdict of `p2psync doctor`. */
export interface DoctorCheck {
  check: 'signal' | 'stun' | 'nat' | 'turn' | 'local';
  /** What was checked (a URL with secrets redacted, or "interfaces"). */
  target: string;
  ok: boolean;
  /** One sentence: what was found, or why it failed. */
  reason: string;
  details?: Record<string, unknown>;
}
