import { Controller, Get, Header } from '@nestjs/common';
import { prometheusContentType } from 'prom-client';
import { KafkaMetricsService } from 'nest-kafka-groups/metrics';

/** GET /metrics: Prometheus text format (consumer group metrics and the process's default metrics). */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: KafkaMetricsService) {}

  @Get()
  @Header('Content-Type', prometheusContentType)
  @Header('Cache-Control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.metrics();
  }
}
