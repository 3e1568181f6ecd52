import { ExitCode } from '../core/errors.js';

export interface Stopper {
  /** Aborted on the first SIGINT or SIGTERM; `reason` is the signal name. */
  readonly signal: AbortSignal;
  /** The exit code an interrupted run should return: 130 for SIGINT, 0 for SIGTERM. */
  interruptedExitCode(): number | undefined;
  /** Removes the handlers. */
  dispose(): void;
}

/**
 * Installs SIGINT/SIGTERM handlers. Call it before printing any readiness line: a harness that signals as soon as
 * it reads the line would otherwise kill the process by the default action. A second signal exits at once.
 */
export function installSignalHandlers(): Stopper {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (received) process.exit(sig === 'SIGINT' ? ExitCode.interrupted : ExitCode.failure);
    received = sig;
    controller.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    interruptedExitCode: () =>
      received === 'SIGINT' ? ExitCode.interrupted : received === 'SIGTERM' ? ExitCode.ok : undefined,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
