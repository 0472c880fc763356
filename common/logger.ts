import pino from 'pino';
import { readEnv } from './config';

// Pretty in a terminal, JSON otherwise (CI, log collectors).
export function createLogger(name: string): pino.Logger {
  const level = readEnv().CAUSEWAY_LOG_LEVEL;
  if (process.stderr.isTTY) {
    return pino({
      name,
      level,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } },
    });
  }
  return pino({ name, level }, pino.destination(2));
}
