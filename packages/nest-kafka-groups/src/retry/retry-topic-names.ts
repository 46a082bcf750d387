/** Spring's RetryTopicConstants.DEFAULT_RETRY_SUFFIX. */
export const DEFAULT_RETRY_TOPIC_SUFFIX = '-retry';

/** How retry topic names end: with the delay (Spring's default, SUFFIX_WITH_DELAY_VALUE) or the index. */
export type RetryTopicSuffixing = 'delay' | 'index';

export interface RetryTopicNaming {
  suffix: string;
  suffixing: RetryTopicSuffixing;
  /** Names every retry topic itself (index is the 0-based retry, so attempt index + 2 is delivered there). */
  topicName?: (sourceTopic: string, delayMs: number, index: number) => string;
}

/**
 * The retry topic of each delay, as Spring's DestinationTopicPropertiesFactory names them with its defaults
 * (delay-value suffixes, one topic for repeated trailing delays): [1000, 10000, 60000] gives `-retry-1000`,
 * `-retry-10000`, `-retry-60000`; one delay, or several equal ones, give a single `-retry`; equal delays at the
 * end share the topic of the first of them. Entry i is where attempt i + 2 is delivered; names may repeat.
 */
export function retryTopicNames(
  sourceTopic: string,
  delaysMs: readonly number[],
  naming: RetryTopicNaming,
): string[] {
  if (naming.topicName) return delaysMs.map((delay, index) => naming.topicName!(sourceTopic, delay, index));
  const count = delaysMs.length;
  const last = delaysMs[count - 1];
  const sameAsLast = delaysMs.filter((delay) => delay === last).length;
  // Spring's reusableTopicAttempts: the trailing run of the last delay collapses into one topic.
  const distinctTopics = count > 1 ? count - (sameAsLast - 1) : count;
  const fixed =
    naming.suffixing === 'index' || (count > 1 && delaysMs.every((delay) => delay === delaysMs[0]));
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    const named = Math.min(index, distinctTopics - 1);
    let suffix: string;
    if (distinctTopics === 1) suffix = naming.suffix;
    else if (fixed) suffix = `${naming.suffix}-${named}`;
    else suffix = `${naming.suffix}-${delaysMs[named]}`;
    names.push(`${sourceTopic}${suffix}`);
  }
  return names;
}
