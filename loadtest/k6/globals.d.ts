// k6 provides console (https://grafana.com/docs/k6/latest/javascript-api/), which @types/k6 does not declare.
declare global {
  const console: {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  };
}
export {};
