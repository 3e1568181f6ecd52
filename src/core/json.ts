/**
 * The JSON object a text holds, or undefined for anything else: invalid JSON, an array, a scalar (never throws).
 * Every frame from the network goes through it before its shape is checked.
 */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
