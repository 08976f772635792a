/**
 * libuv runs every fs call on a pool of 4 threads by default. One read stuck on a hung mount
 * (pmxcfs without quorum) holds a thread until it returns; a larger pool keeps the rest of the
 * exporter reading while collectors time out. Must run before the first fs call creates the pool.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '16';
