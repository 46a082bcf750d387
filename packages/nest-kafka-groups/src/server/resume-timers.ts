/**
 * The timers that resume paused partitions, one per partition. A resume runs inside a timer, where an exception
 * would end the process: kafkajs's `resume()` throws while its consumer group is being rebuilt after a crash, so
 * every failure goes to `onError` instead. Timers are unref'd: a paused partition must not keep a process alive
 * that is shutting down.
 */
export class ResumeTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly onError: (key: string, error: unknown) => void) {}

  schedule(key: string, delayMs: number, resume: () => void): void {
    clearTimeout(this.timers.get(key));
    const timer = setTimeout(() => {
      this.timers.delete(key);
      try {
        resume();
      } catch (error) {
        this.onError(key, error);
      }
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  get size(): number {
    return this.timers.size;
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
