/** Topic names as messages list them: `"orders", "orders-dlt"`. */
export function quotedTopics(topics: readonly string[]): string {
  return topics.map((t) => `"${t}"`).join(', ');
}
