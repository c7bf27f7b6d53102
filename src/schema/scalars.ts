import { GraphQLUpload } from 'graphql-upload-minimal';
import { BadUserInputError } from '../errors.js';
import { builder } from './builder.js';

builder.scalarType('DateTime', {
  description: 'An ISO-8601 instant in UTC, e.g. 2026-01-31T12:00:00.000Z.',
  serialize: (value) => value,
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
    if (Number.isNaN(date.getTime())) throw new BadUserInputError('DateTime', 'Expected an ISO-8601 date-time string.');
    return date;
  },
});

builder.addScalarType('Upload', GraphQLUpload, {});
