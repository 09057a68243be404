// The one error a bad configuration value raises: it names the key, the value and what
// is allowed. Its own file, so every config module can throw it without importing load.ts.
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly allowed: string,
  ) {
    super(`invalid configuration: ${key} = ${JSON.stringify(value)}: ${allowed}`);
  }
}
