interface Waiter {
  readonly keys: readonly string[];
  readonly resolve: (first: boolean) => void;
}

/**
 * One idempotent producer's partitions, each with the send() calls that have a batch for it, in the order they
 * planned their batches. Only the first send() of a partition's queue sends its batch there; it keeps its place
 * until that batch is acknowledged or its send() settles, so a batch whose answer was lost is retried before any
 * later batch of its partition takes sequence numbers (as the Java client retries a partition's batches first),
 * and the retry stays within the broker's window of the last 5 batches it deduplicates against.
 *
 * Deadlock-free: a send() joins the queues of all its partitions in one step, so every queue orders the send()
 * calls alike, and the earliest one waiting heads each of its queues.
 */
export class PartitionOrder<Turn> {
  private readonly queues = new Map<string, Turn[]>();
  private readonly waiters = new Map<Turn, Waiter[]>();

  /** Queues `turn` behind the send() calls already queued for each of its partitions. */
  join(turn: Turn, keys: Iterable<string>): void {
    for (const key of keys) {
      const queue = this.queues.get(key);
      if (queue) queue.push(turn);
      else this.queues.set(key, [turn]);
    }
  }

  /**
   * Undefined when `turn` heads the queue of every one of `keys`, else a promise of true once it does, or of false
   * once `turn` left its queues without (its send() settled).
   */
  whenFirst(turn: Turn, keys: readonly string[]): Promise<boolean> | undefined {
    if (this.heads(turn, keys)) return undefined;
    return new Promise((resolve) => {
      const waiting = this.waiters.get(turn);
      const waiter = { keys, resolve };
      if (waiting) waiting.push(waiter);
      else this.waiters.set(turn, [waiter]);
    });
  }

  /** Takes `turn` out of every queue of `keys` and ends its waits (its send() settled). */
  leaveAll(turn: Turn, keys: Iterable<string>): void {
    for (const key of keys) this.leave(turn, key);
    const waiting = this.waiters.get(turn);
    this.waiters.delete(turn);
    for (const waiter of waiting ?? []) waiter.resolve(false);
  }

  /** Takes `turn` out of the queue of `key` (its batch there is settled); the next send() there may go. */
  leave(turn: Turn, key: string): void {
    const queue = this.queues.get(key);
    const index = queue ? queue.indexOf(turn) : -1;
    if (!queue || index === -1) return;
    queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(key);
    else if (index === 0) this.wake(queue[0]);
  }

  /** Whether no send() is queued (nothing is kept for a partition once its send() calls settled). */
  isEmpty(): boolean {
    return this.queues.size === 0 && this.waiters.size === 0;
  }

  private heads(turn: Turn, keys: readonly string[]): boolean {
    return keys.every((key) => this.queues.get(key)?.[0] === turn);
  }

  private wake(turn: Turn): void {
    const waiting = this.waiters.get(turn);
    if (!waiting) return;
    const ready = waiting.filter((waiter) => this.heads(turn, waiter.keys));
    if (ready.length === 0) return;
    const still = waiting.filter((waiter) => !ready.includes(waiter));
    if (still.length === 0) this.waiters.delete(turn);
    else this.waiters.set(turn, still);
    for (const waiter of ready) waiter.resolve(true);
  }
}
