import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FILES_COMMANDS, FILES_USAGE, type FilesCommand, type FilesIo, runFilesCommand } from './cli-files.js';
import { ApiKeyService, scopesOf } from './auth/api-key-service.js';
import { type Config, loadConfig } from './config.js';
import { fsck, FsckError, type FsckReport, isClean } from './services/lifecycle/fsck.js';
import { openDatabase, openStorage, type Storage } from './features/storage.js';
import { dialectOf } from './db/database.js';
import type { ApiKeyRow } from './db/types.js';
import { AppError, ConfigError } from './errors.js';
import { decodeGlobalId, encodeGlobalId } from './global-id.js';

export type CliIo = FilesIo;

const USAGE = `usage:
${FILES_USAGE}

  assetgate keys create --org ORG --scope S [--scope S…] [--test] [--name N] [--json]
  assetgate keys list [--org ORG] [--json]
  assetgate keys revoke ID
  assetgate fsck [--repair] [--checksums] [--json]

Scopes: read:assets, write:assets, delete:assets, admin:keys, admin:webhooks.
keys and fsck work on the database itself, without a server: they read the same
environment variables as the server (DATA_DIR, DATABASE_URL…) and say which database
they open; only keys create makes one that does not exist yet.
Each command takes --help.`;

function configFrom(env: Record<string, string | undefined>, io: CliIo): Config | null {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`assetgate: bad configuration: ${error.message}`);
      return null;
    }
    throw error;
  }
}

/**
 * The database `keys` and `fsck` work on, said on stderr so a wrong DATA_DIR shows at once.
 * Only `keys create` may make it (the contract lets a key be made before the first start);
 * the other commands get null when its SQLite file does not exist, since an empty database
 * made by a typo would answer every question with nothing.
 */
function openedDatabase(config: Config, io: CliIo, mayCreate = false): string | null {
  const url = config.databaseUrl;
  if (dialectOf(url) === 'postgres') {
    const shown = new URL(url);
    if (shown.password) shown.password = '***';
    io.err(`assetgate: database ${shown.href}`);
    return url;
  }
  const file = url.slice('sqlite:'.length);
  if (file !== ':memory:' && !existsSync(file)) {
    if (mayCreate) {
      io.err(`assetgate: database ${file} (new)`);
      return url;
    }
    io.err(
      `assetgate: no database at ${file}: set DATA_DIR (or DATABASE_URL) to the server's, ` +
        'or start the server once to create it',
    );
    return null;
  }
  io.err(`assetgate: database ${file}`);
  return url;
}

/** The exit codes of `assetgate fsck`. */
const FSCK_EXIT = { consistent: 0, inconsistent: 1, usage: 2, failed: 3 } as const;

/** Prints what the check found, a line each, and its verdict. */
function printReport(report: FsckReport, repair: boolean, io: CliIo): void {
  io.out(`checked ${report.assetsChecked} assets and ${report.blobsChecked} blobs`);
  for (const m of report.missingBlobs) io.out(`missing blob ${m.key} of asset ${m.assetId}`);
  for (const d of report.damagedBlobs) io.out(`damaged blob ${d.key} of asset ${d.assetId}: ${d.problem}`);
  for (const r of report.missingRenditions) io.out(`missing rendition ${r.key} of asset ${r.assetId}`);
  for (const o of report.orphanBlobs) io.out(`orphan blob ${o}`);
  for (const r of report.refCountMismatches)
    io.out(`blob ${r.key} of org ${r.orgId}: counted ${r.recorded ?? 'nowhere'}, held by ${r.actual} assets`);
  for (const u of report.usageMismatches)
    io.out(`org ${u.orgId}: recorded ${u.recorded} bytes, assets hold ${u.actual}`);
  if (report.youngBlobs) io.out(`left alone: ${report.youngBlobs} blobs younger than FSCK_GRACE, owned by nothing yet`);
  io.out(isClean(report) ? 'consistent' : repair ? 'repaired' : 'inconsistent: run with --repair to mend');
}

/**
 * `assetgate fsck`: exit 0 when consistent (or mended with --repair), 1 when not, 2 on a
 * usage error, 3 when the check could not finish (configuration, database or store), with
 * one line on stderr saying why.
 */
async function runFsck(args: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: { repair: { type: 'boolean' }, checksums: { type: 'boolean' }, json: { type: 'boolean' } },
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return FSCK_EXIT.usage;
  }
  const config = configFrom(env, io);
  const url = config && openedDatabase(config, io);
  if (!config || !url) return FSCK_EXIT.failed;
  let storage: Storage | undefined;
  try {
    try {
      storage = await openStorage(config);
    } catch (error) {
      throw new FsckError('opening the database', error);
    }
    const report = await fsck(storage, {
      repair: values.repair,
      checksums: values.checksums,
      orphanGraceMs: config.fsckGrace * 1000,
    });
    if (values.json) io.out(JSON.stringify(report));
    else printReport(report, !!values.repair, io);
    return isClean(report) || values.repair ? FSCK_EXIT.consistent : FSCK_EXIT.inconsistent;
  } catch (error) {
    // What failed, in one line: an operator's script reads it, a stack trace helps no one here.
    io.err(`assetgate fsck: ${(error instanceof FsckError ? error : new FsckError('the check', error)).message}`);
    return FSCK_EXIT.failed;
  } finally {
    await storage?.close();
  }
}

function describe(key: ApiKeyRow) {
  return {
    id: encodeGlobalId('ApiKey', key.id),
    name: key.name,
    org: key.org_id,
    scopes: scopesOf(key),
    mode: key.mode,
    prefix: key.prefix,
    createdAt: key.created_at,
    expiresAt: key.expires_at,
    lastUsedAt: key.last_used_at,
    revokedAt: key.revoked_at,
  };
}

/** `ApiKey` global IDs as printed by `keys list`, or the bare UUID. */
function keyId(raw: string): string {
  return /^[0-9a-f-]{36}$/.test(raw) ? raw : decodeGlobalId(raw).id;
}

/**
 * The command line: key management without a running server. Returns the exit
 * code (0 done, 1 failed, 2 usage). Reads configuration from `env`.
 */
export async function runCli(argv: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  const [group, command, ...rest] = argv;
  if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
    (group === undefined ? io.err : io.out)(USAGE);
    return group === undefined ? 2 : 0;
  }
  if (FILES_COMMANDS.includes(group as FilesCommand))
    return runFilesCommand(group as FilesCommand, argv.slice(1), { env, io });
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  if (group === 'fsck') return runFsck(argv.slice(1), env, io);
  if (group !== 'keys' || !['create', 'list', 'revoke'].includes(command ?? '')) {
    const problem =
      group !== 'keys'
        ? `unknown command "${group}"`
        : command === undefined
          ? 'keys needs a command: create, list or revoke'
          : `unknown command "keys ${command}"`;
    io.err(`assetgate: ${problem}\n\n${USAGE}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: command === 'revoke',
      options: {
        org: { type: 'string' },
        scope: { type: 'string', multiple: true },
        test: { type: 'boolean' },
        name: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;

  const config = configFrom(env, io);
  const url = config && openedDatabase(config, io, command === 'create');
  if (!config || !url) return 1;
  const database = await openDatabase(config);
  try {
    const { repos } = database;
    const keys = new ApiKeyService({ keys: repos.apiKeys, orgs: repos.orgs });
    if (command === 'create') {
      if (!values.org || !values.scope?.length) {
        io.err(`keys create needs --org and at least one --scope\n\n${USAGE}`);
        return 2;
      }
      const { key, record } = await keys.create({
        orgId: values.org,
        scopes: values.scope,
        mode: values.test ? 'test' : 'live',
        name: values.name,
      });
      const { id, org, scopes, mode } = describe(record);
      if (values.json) io.out(JSON.stringify({ id, key, org, scopes, mode }));
      else
        io.out(
          `${key}\n\nKey ${id} (${mode}, org ${org}, scopes ${scopes.join(' ')}). This is the only time it is shown.`,
        );
    } else if (command === 'list') {
      const list = (await keys.list({ orgId: values.org })).map(describe);
      if (values.json) io.out(JSON.stringify(list));
      else {
        for (const k of list) {
          const state = k.revokedAt ? 'revoked' : 'active';
          io.out(`${k.id}  ${k.org}  ${k.mode}  ${k.prefix}…  ${state}  ${k.scopes.join(',')}  ${k.name}`);
        }
      }
    } else {
      if (positionals.length !== 1) {
        io.err(`keys revoke takes one key id\n\n${USAGE}`);
        return 2;
      }
      const record = await keys.revoke(keyId(positionals[0]));
      io.out(`revoked ${encodeGlobalId('ApiKey', record.id)}`);
    }
    return 0;
  } catch (error) {
    if (error instanceof AppError) {
      io.err(`assetgate: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await database.close();
  }
}
