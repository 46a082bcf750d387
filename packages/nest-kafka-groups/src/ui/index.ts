/** `nest-kafka-groups/ui`: the live page of the consumer groups (GET /kafka/ui), loaded only when imported. */
export { KafkaUiModule } from './kafka-ui.module.js';
export { KafkaUiService, type KafkaUiSnapshot } from './kafka-ui.service.js';
export { KAFKA_UI_OPTIONS, DEFAULT_UI_OPTIONS, type KafkaUiOptions } from './kafka-ui.options.js';
export type { UiGroupView, UiMemberView, UiPartitionView, Rates } from './group-view.js';
export type { LagPoint } from './lag-history.js';
