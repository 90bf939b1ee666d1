"""Baseline 1: a uniform random sample of the pool, sized to the track's token budget.

python examples/random_sample.py --track nano --out subsets/random.jsonl
"""

from common import fill_budget, parse_args, pool_documents, write_subset

if __name__ == "__main__":
    args = parse_args(__doc__)
    n = write_subset(fill_budget(pool_documents(args.track), args.track, args.seed), args.out)
    print(f"wrote {n} documents to {args.out}")
