/**
 * The scale benchmark's check of its traffic (bench/scale.mjs): every message sent is handled at least once, and
 * what was handled more than once is told apart: an offset handled twice is a redelivery by the consumers, a seq
 * seen at two offsets is a message the producer wrote twice (its retry of a request the broker had written).
 */
export class DeliveryTally {
  seen = new Uint8Array(1024);
  offsets = new Set();
  redelivered = 0;

  /** One message handled: its seq (0-based, in send order) and where it was read (`topic:partition:offset`). */
  handled(seq, offset) {
    if (this.offsets.has(offset)) this.redelivered++;
    else this.offsets.add(offset);
    if (seq >= this.seen.length) {
      const grown = new Uint8Array(Math.max(seq + 1, this.seen.length * 2));
      grown.set(this.seen);
      this.seen = grown;
    }
    this.seen[seq] = 1;
  }

  /** Against the `sent` messages (seq 0 to sent - 1): lost, redelivered, written twice. */
  tally(sent) {
    let lost = 0;
    for (let seq = 0; seq < sent; seq++) if (seq >= this.seen.length || this.seen[seq] === 0) lost++;
    return {
      produced: sent,
      lost,
      redelivered: this.redelivered,
      writtenTwice: this.offsets.size - (sent - lost),
    };
  }
}
