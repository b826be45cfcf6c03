"""One function and its renamed copy: the pair the similarity tests look for."""

MERGE = '''def merge_intervals(intervals):
    """Merge overlapping [start, end] intervals."""
    intervals.sort(key=lambda pair: pair[0])
    merged = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
'''
# The same function, every name changed and the docstring dropped.
COMBINE = '''def combine_ranges(spans):
    spans.sort(key=lambda item: item[0])
    out = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out
'''
MERGE_BARE = MERGE.replace('    """Merge overlapping [start, end] intervals."""\n', "")  # no docstring
