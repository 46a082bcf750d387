/** What the figures were measured on: machine, versions, the code's commit. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './settings.mjs';

function packageVersion(name) {
  try {
    return JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function git(args) {
  const result = spawnSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** The Kafka version the local launcher runs (packages/nest-kafka-groups/kafka/pom.xml). */
export function launcherKafkaVersion() {
  const pom = join(REPO_ROOT, 'packages', 'nest-kafka-groups', 'kafka', 'pom.xml');
  if (!existsSync(pom)) return null;
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(pom, 'utf8'))?.[1] ?? null;
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function versions() {
  const status = git(['status', '--porcelain', '--', 'src']);
  return {
    node: process.version,
    kafkajs: packageVersion('kafkajs'),
    '@nestjs/core': packageVersion('@nestjs/core'),
    '@nestjs/microservices': packageVersion('@nestjs/microservices'),
    rxjs: packageVersion('rxjs'),
    library: JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version,
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcModified: status === null ? null : status !== '',
  };
}
