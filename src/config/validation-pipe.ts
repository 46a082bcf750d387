import { ValidationPipe } from '@nestjs/common';

/**
 * The service's global pipe, for HTTP and Kafka alike. whitelist + forbidNonWhitelisted: a payload with a field
 * its DTO does not declare is refused (a Kafka message is dead-lettered), so nothing a producer adds is stored or
 * served.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true });
}
