import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../database.js';

/**
 * Full-text search over an asset's title, tags, filename, description and the text
 * extraction read from its bytes (PDF pages, text files). SQLite: an FTS5 table, one
 * row per asset under the asset's rowid, its fields kept by triggers and its `body`
 * (the extracted text, kept nowhere else) written by processing. PostgreSQL: a
 * generated, weighted `tsvector` with a GIN index over the fields and `search_body`
 * (the extracted text's vector). `search_tags` is the asset's tags as one string, kept
 * by the repository with the tags, so both engines index them without a join.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assets').addColumn('search_tags', 'text').execute();
  if (isPostgres(db)) {
    await sql`update assets set search_tags = (select string_agg(tag, ' ' order by tag) from asset_tags where asset_tags.asset_id = assets.id)`.execute(
      db,
    );
    await sql`alter table assets add column search_body tsvector`.execute(db);
    await sql`alter table assets add column search_vector tsvector generated always as (
      setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
      setweight(to_tsvector('simple', coalesce(search_tags, '')), 'B') ||
      setweight(to_tsvector('simple', regexp_replace(coalesce(filename, ''), '[^[:alnum:]]+', ' ', 'g')), 'B') ||
      setweight(to_tsvector('simple', coalesce(description, '')), 'C') ||
      setweight(coalesce(search_body, ''::tsvector), 'D')
    ) stored`.execute(db);
    await sql`create index assets_search_idx on assets using gin (search_vector)`.execute(db);
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
    await sql`drop index assets_search_idx`.execute(db);
    await sql`alter table assets drop column search_vector`.execute(db);
    await sql`alter table assets drop column search_body`.execute(db);
  } else {
    for (const trigger of ['assets_fts_insert', 'assets_fts_update', 'assets_fts_delete']) {
      await sql`drop trigger ${sql.raw(trigger)}`.execute(db);
    }
    await sql`drop table assets_fts`.execute(db);
  }
  await db.schema.alterTable('assets').dropColumn('search_tags').execute();
}
