import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now (for a broker or service a spec starts of its own). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Fails, naming the port and the variable that chose it, when a port a spec is about to give its own broker is
 * taken (another run's broker, a parallel checkout), instead of a start-up timeout later.
 */
export async function expectPortsFree(ports: number[], variable: string): Promise<void> {
  for (const port of ports) {
    const taken = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(true));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
    });
    if (taken) {
      throw new Error(
        `port ${port} on 127.0.0.1 is taken; choose free ports with ${variable} (it uses ${ports.join(', ')})`,
      );
    }
  }
}

/** The launcher needs Java 17+ to start a broker of the spec's own. */
export function javaAvailable(): boolean {
  const java = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : 'java';
  const result = spawnSync(java, ['-version'], { encoding: 'utf8' });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr ?? ''}${result.stdout ?? ''}`);
  const major = match ? Number(match[1] === '1' ? match[2] : match[1]) : 0;
  return major >= 17;
}
