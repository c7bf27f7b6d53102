// The part of the thumbhash package the browser uses; the gateway serves its module beside this one.
export function thumbHashToDataURL(hash: ArrayLike<number>): string;
