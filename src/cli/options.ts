import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { InvalidArgumentError, Option } from 'commander';
import { P2PSyncError } from '../core/errors.js';

/**
 * Declares a flag with its env-var equivalent in one place; commander shows both (and the default) in --help.
 * Every p2psync flag `--foo-bar` has the env var `P2PSYNC_FOO_BAR`.
 */
export function flag(flags: string, description: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1];
  if (!long) throw new P2PSyncError('E_INTERNAL', `flag without a long name: ${flags}`);
  return new Option(flags, description).env(envName(long));
}

export function envName(longFlag: string): string {
  return 'P2PSYNC_' + longFlag.toUpperCase().replace(/-/g, '_');
}

/** The `--json` flag every command has. */
export const jsonFlag = (): Option => flag('--json', 'print machine-readable NDJSON events on stdout').default(false);

export function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()))
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got ${n}`);
    return n;
  };
}

export const parsePort = parseInteger(0, 65_535);

export function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number of seconds, got "${value}"`);
  return n;
}

/** Collects a repeatable flag's values into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A value that must not be empty or blank (field names, collection names). */
export function parseNonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('expected a non-empty value');
  return value;
}

/**
 * An IP address of this machine (or the wildcard 0.0.0.0 / ::). Binding to anything else fails only later, inside
 * every connection attempt, so it is refused here.
 */
export function parseLocalAddress(value: string): string {
  const address = value.trim();
  if (isIP(address) === 0) throw new InvalidArgumentError(`"${value}" is not an IP address`);
  if (address === '0.0.0.0' || address === '::') return address;
  const local = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.toLowerCase()));
  if (!local.includes(address.toLowerCase())) {
    throw new InvalidArgumentError(`${address} is not an address of this machine (${local.join(', ')})`);
  }
  return address;
}
