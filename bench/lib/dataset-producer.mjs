/**
 * One producer of a data set (bench/lib/dataset.mjs, produceDataset), in a worker thread: writes the messages that
 * fall on its partitions and posts the bytes it wrote.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { producePartitions } from './dataset.mjs';

const { brokers, topic, count, partitions } = workerData;
parentPort.postMessage(await producePartitions(brokers, topic, count, partitions));
