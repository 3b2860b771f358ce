"""Time formatting for progress lines with an ETA (training, inference over folders, data tools)."""


def format_duration(seconds):
    """Seconds -> 'H:MM:SS' (negative values count as 0)."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours:d}:{rest // 60:02d}:{rest % 60:02d}"
