import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { IncomingMessage } from 'node:http';
import type { Environment } from '../config/environment.js';
import { checkBearerToken } from './admin-token.js';

/** The admin endpoints need `Authorization: Bearer <KAFKA_ADMIN_TOKEN>`; with no token configured they are off. */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly token: string;

  constructor(config: ConfigService<Environment, true>) {
    this.token = config.get('KAFKA_ADMIN_TOKEN', { infer: true });
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.token === '') {
      throw new ForbiddenException('Admin endpoints are disabled: set KAFKA_ADMIN_TOKEN to enable them');
    }
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const refusal = checkBearerToken(request.headers.authorization, this.token);
    if (refusal === 'missing') {
      throw new UnauthorizedException('Send the admin token as "Authorization: Bearer <KAFKA_ADMIN_TOKEN>"');
    }
    if (refusal === 'invalid') throw new UnauthorizedException('Invalid admin token');
    return true;
  }
}
