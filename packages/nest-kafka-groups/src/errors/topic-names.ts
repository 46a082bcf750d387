/** Topic names as messages list them: `"orders", "orders-dlt"`. */
export function quotedTopics(topics: readonly string[]): string {
  return topics.map((t) => `"${t}"`).join(', ');
}

/** Topics as an authorization message names its resource: `topic orders`, `topics orders, orders-dlt`. */
export function topicResource(topics: readonly string[]): string {
  return `${plural(topics, 'topic', 'topics')} ${topics.join(', ') || '(unknown)'}`;
}

/** The word a message uses for `items`, by their number: `plural(topics, 'it exists', 'they exist')`. */
export function plural(items: readonly unknown[], one: string, many: string): string {
  return items.length === 1 ? one : many;
}
