import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Principal } from '../src/auth/principal.js';
import { SCOPES, type Scope } from '../src/auth/scopes.js';
import { isVisible, type Shelf, type Sight, visibleSql } from '../src/db/asset-visibility.js';
import type { AssetRow, Mode } from '../src/db/types.js';
import { mayFetch, mayRead } from '../src/services/assets/asset-access.js';
import { createTestApp, forEachDialect, type TestApp } from './helpers.js';

/**
 * The access rule is written once (`asset-visibility.ts`) and read two ways: as SQL by
 * the queries and as TypeScript by the checks of rows at hand. Every asset state, asked
 * by every kind of caller, gets the same answer from both.
 */

const LIFECYCLE = ['live', 'trashed', 'exhausted', 'trashed and exhausted'] as const;
const STATES = (['live', 'test'] as const).flatMap((mode) =>
  [0, 1].flatMap((isPublic) => LIFECYCLE.map((lifecycle) => ({ mode, isPublic, lifecycle }))),
);

const principal = (orgId: string, mode: Mode, scopes: readonly Scope[] = SCOPES): Principal => ({
  keyId: `${orgId}-${mode}`,
  name: orgId,
  orgId,
  mode,
  scopes: new Set(scopes),
});
const VIEWERS: Record<string, Principal | null> = {
  owner: principal('acme', 'live'),
  'owner without read:assets': principal('acme', 'live', ['write:assets', 'delete:assets']),
  'owner in test mode': principal('acme', 'test'),
  'another org': principal('globex', 'live'),
  anonymous: null,
};

forEachDialect((dialect) => {
  describe(`one access rule, in SQL and in TypeScript (${dialect})`, () => {
    let app: TestApp;
    const rows: { state: (typeof STATES)[number]; row: AssetRow }[] = [];
    before(async () => {
      app = await createTestApp({ SWEEP_INTERVAL: '0', JOB_CONCURRENCY: '0' }, {}, dialect);
      const now = new Date().toISOString();
      for (const state of STATES) {
        const created = await app.services.assets.createExternal(
          { orgId: 'acme', mode: state.mode },
          {
            title: `${state.mode} ${state.isPublic ? 'public' : 'private'} ${state.lifecycle}`,
            type: 'LINK',
            externalUrl: 'https://example.com/',
            isPublic: state.isPublic === 1,
          },
        );
        const row = await app.db
          .updateTable('assets')
          .set({
            trashed_at: state.lifecycle.includes('trashed') ? now : null,
            exhausted_at: state.lifecycle.includes('exhausted') ? now : null,
          })
          .where('id', '=', created.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        rows.push({ state, row });
      }
    });
    after(() => app.dispose());

    const sights: Sight[] = (['live', 'trash'] as Shelf[]).flatMap((shelf) =>
      [
        { orgId: 'acme', mode: 'live' as Mode },
        { orgId: 'acme', mode: 'test' as Mode },
        { orgId: 'globex', mode: 'live' as Mode },
        'anyone' as const,
      ].flatMap((audience) => [false, true].map((usedUp) => ({ shelf, audience, usedUp }))),
    );

    test('the SQL predicate and the TypeScript check agree on every state and every sight', async () => {
      for (const sight of sights) {
        const bySql = new Set(
          (
            await app.db
              .selectFrom('assets')
              .select('id')
              .where((eb) => visibleSql(eb, sight))
              .execute()
          ).map((r) => r.id),
        );
        for (const { state, row } of rows) {
          assert.equal(
            isVisible(row, sight),
            bySql.has(row.id),
            `${JSON.stringify(state)} seen by ${JSON.stringify(sight)}`,
          );
        }
      }
    });

    test('what a caller may read of a row at hand is what the queries find for it', async () => {
      const { access } = app.services;
      for (const [name, viewer] of Object.entries(VIEWERS)) {
        for (const { state, row } of rows) {
          const live = (await access.findReadable(viewer, [row.id]))[0] !== undefined;
          const inOwnTrash =
            viewer?.scopes.has('read:assets') === true &&
            (await app.repositories.assets.count(viewer, { ids: [row.id], trashed: true })) === 1;
          const what = `${name} reading ${JSON.stringify(state)}`;
          assert.equal(mayRead(viewer, row), live || inOwnTrash, what);
          // A signed URL is as good as its key: whatever that key finds live, used up or not.
          if (viewer) {
            const own = viewer.scopes.has('read:assets');
            const opened = await app.db
              .selectFrom('assets')
              .select('id')
              .where('id', '=', row.id)
              .where((eb) =>
                eb.or([
                  visibleSql(eb, { shelf: 'live', audience: 'anyone', usedUp: true }),
                  visibleSql(eb, { shelf: 'live', audience: own ? viewer : { orgId: '', mode: 'live' }, usedUp: true }),
                ]),
              )
              .executeTakeFirst();
            assert.equal(mayFetch(viewer, row), opened !== undefined, `a URL of ${what}`);
          }
        }
      }
    });

    test('the answers themselves: used up is gone for everyone, the trash is its owner’s alone', () => {
      const reads = (viewer: keyof typeof VIEWERS) =>
        rows
          .filter(({ row }) => mayRead(VIEWERS[viewer], row))
          .map(({ state }) => `${state.mode} ${state.isPublic} ${state.lifecycle}`);
      assert.deepEqual(reads('owner'), [
        'live 0 live',
        'live 0 trashed',
        'live 1 live',
        'live 1 trashed',
        'test 1 live',
      ]);
      assert.deepEqual(reads('anonymous'), ['live 1 live', 'test 1 live']);
      assert.deepEqual(reads('another org'), ['live 1 live', 'test 1 live']);
      assert.deepEqual(reads('owner without read:assets'), ['live 1 live', 'test 1 live']);
    });
  });
});
