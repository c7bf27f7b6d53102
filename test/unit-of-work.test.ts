import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createTestApp, forEachDialect, type TestApp } from './helpers.js';

const ACME = { orgId: 'acme', mode: 'live' } as const;

/** Position of the first statement matching `pattern`; fails when there is none (the test would say nothing). */
function firstIndex(statements: string[], pattern: RegExp): number {
  const index = statements.findIndex((sql) => pattern.test(sql));
  assert.notEqual(index, -1, `no statement matches ${pattern}:\n${statements.join('\n')}`);
  return index;
}

const ORG_ROW = /^update "orgs"/;
const COPY_ROW = /^(insert into|update|delete from) "blobs"/;

forEachDialect((dialect) => {
  describe(`the unit of work (${dialect})`, () => {
    let app: TestApp;
    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0', JOB_CONCURRENCY: '0' }, {}, dialect);
    });
    after(() => app.dispose());

    const upload = (text: string) =>
      app.services.assets.upload(ACME, { stream: Readable.from([Buffer.from(text)]), filename: 'a.txt' });

    // Uploads and deletes of the same bytes take the org's row before its copy's: in the
    // other order each could hold what the other waits for (a deadlock on PostgreSQL).
    test('an upload takes the org row before the copy row', async () => {
      const statements = await app.recordQueries(() => upload('lock order, upload'));
      assert.ok(firstIndex(statements, ORG_ROW) < firstIndex(statements, COPY_ROW), statements.join('\n'));
    });

    test('a replace takes the org row before the copy rows', async () => {
      const asset = await upload('lock order, before the replace');
      const statements = await app.recordQueries(() =>
        app.services.assets.replaceFile(ACME, asset.id, {
          stream: Readable.from([Buffer.from('lock order, after the replace')]),
        }),
      );
      assert.ok(firstIndex(statements, ORG_ROW) < firstIndex(statements, COPY_ROW), statements.join('\n'));
    });

    test('a delete takes the org row before the copy row', async () => {
      const asset = await upload('lock order, delete');
      const statements = await app.recordQueries(() =>
        app.services.assets.delete(ACME, asset.id, { permanently: true }),
      );
      assert.ok(firstIndex(statements, ORG_ROW) < firstIndex(statements, COPY_ROW), statements.join('\n'));
    });

    test('a transaction commits all of its writes or none', async () => {
      const failure = new Error('the second write fails');
      await assert.rejects(
        app.repositories.transaction(async (tx) => {
          await tx.orgs.ensure('rolled-back', new Date().toISOString());
          // A nested transaction joins the outer one: its write goes with the outer rollback.
          await tx.transaction((inner) => inner.orgs.ensure('rolled-back-too', new Date().toISOString()));
          throw failure;
        }),
        failure,
      );
      assert.equal(await app.repositories.orgs.createIfAbsent('rolled-back', new Date().toISOString()), true);
      assert.equal(await app.repositories.orgs.createIfAbsent('rolled-back-too', new Date().toISOString()), true);
      await app.repositories.transaction((tx) => tx.orgs.ensure('committed', new Date().toISOString()));
      assert.equal(await app.repositories.orgs.createIfAbsent('committed', new Date().toISOString()), false);
    });
  });
});
