/** Observations a member reports for each message (metrics and the like). Called on the hot path: keep it cheap. */
export interface MemberObserver {
  processed(groupId: string, topic: string, partition: number, durationMs: number): void;
  failed(groupId: string, topic: string, partition: number): void;
  deadLettered(groupId: string, topic: string, partition: number): void;
}

/** One observer for the members: none, the only one as is (no extra call), or a fan-out to several. */
export function combineObservers(observers: readonly MemberObserver[]): MemberObserver | undefined {
  if (observers.length <= 1) return observers[0];
  return {
    processed: (...args) => observers.forEach((o) => o.processed(...args)),
    failed: (...args) => observers.forEach((o) => o.failed(...args)),
    deadLettered: (...args) => observers.forEach((o) => o.deadLettered(...args)),
  };
}
