import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../database.js';

/**
 * Full-text search over an asset's title, tags, filename, description and the text
 * extraction read from its bytes (PDF pages, text files). Both engines keep the index
 * beside `assets`, never in it, so no row read for a page, a download or an event
 * carries the extracted text. SQLite: an FTS5 table, one row per asset under the
 * asset's rowid, its fields kept by triggers and its `body` written by processing.
 * PostgreSQL: `asset_search`, one row per asset: the weighted vector of its fields
 * (kept by a trigger), the vector of its extracted text (written by processing), and
 * their union under a GIN index. `search_tags` is the asset's tags as one string, kept
 * by the repository with the tags, so both engines index them without a join.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assets').addColumn('search_tags', 'text').execute();
  if (isPostgres(db)) {
    await sql`update assets set search_tags = (select string_agg(tag, ' ' order by tag) from asset_tags where asset_tags.asset_id = assets.id)`.execute(
      db,
    );
    await sql`create table asset_search (
      asset_id text primary key references assets (id) on delete cascade,
      fields tsvector not null default ''::tsvector,
      body tsvector not null default ''::tsvector,
      vector tsvector generated always as (fields || body) stored
    )`.execute(db);
    await sql`create index asset_search_idx on asset_search using gin (vector)`.execute(db);
    // Title first, then tags and filename (its words: punctuation splits them), then the description.
    const fields = (row: string) =>
      sql.raw(`
      setweight(to_tsvector('simple', coalesce(${row}.title, '')), 'A') ||
      setweight(to_tsvector('simple', coalesce(${row}.search_tags, '')), 'B') ||
      setweight(to_tsvector('simple', regexp_replace(coalesce(${row}.filename, ''), '[^[:alnum:]]+', ' ', 'g')), 'B') ||
      setweight(to_tsvector('simple', coalesce(${row}.description, '')), 'C')`);
    await sql`create function assets_search_fields() returns trigger language plpgsql as $$
      begin
        insert into asset_search (asset_id, fields) values (new.id, ${fields('new')})
        on conflict (asset_id) do update set fields = excluded.fields;
        return null;
      end $$`.execute(db);
    await sql`create trigger assets_search_fields after insert or update of title, search_tags, filename, description
      on assets for each row execute function assets_search_fields()`.execute(db);
    await sql`insert into asset_search (asset_id, fields) select id, ${fields('assets')} from assets`.execute(db);
    return;
  }
  await sql`update assets set search_tags = (select group_concat(tag, ' ') from (select tag from asset_tags where asset_tags.asset_id = assets.id order by tag))`.execute(
    db,
  );
  // Prefix indexes for two- and three-character prefixes: a search is a prefix query per word.
  await sql`create virtual table assets_fts using fts5(title, tags, filename, description, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')`.execute(
    db,
  );
  await sql`insert into assets_fts (rowid, title, tags, filename, description, body)
    select rowid, title, coalesce(search_tags, ''), coalesce(filename, ''), coalesce(description, ''), '' from assets`.execute(
    db,
  );
  await sql`create trigger assets_fts_insert after insert on assets begin
    insert into assets_fts (rowid, title, tags, filename, description, body)
    values (new.rowid, new.title, coalesce(new.search_tags, ''), coalesce(new.filename, ''), coalesce(new.description, ''), '');
  end`.execute(db);
  await sql`create trigger assets_fts_update after update of title, search_tags, filename, description on assets begin
    update assets_fts set title = new.title, tags = coalesce(new.search_tags, ''), filename = coalesce(new.filename, ''),
      description = coalesce(new.description, '')
    where rowid = new.rowid;
  end`.execute(db);
  await sql`create trigger assets_fts_delete after delete on assets begin
    delete from assets_fts where rowid = old.rowid;
  end`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    await sql`drop trigger assets_search_fields on assets`.execute(db);
    await sql`drop function assets_search_fields()`.execute(db);
    await sql`drop table asset_search`.execute(db);
  } else {
    for (const trigger of ['assets_fts_insert', 'assets_fts_update', 'assets_fts_delete']) {
      await sql`drop trigger ${sql.raw(trigger)}`.execute(db);
    }
    await sql`drop table assets_fts`.execute(db);
  }
  await db.schema.alterTable('assets').dropColumn('search_tags').execute();
}
