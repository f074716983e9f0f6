"""Recording formats, as the catalog names them whatever Tencent's spelling."""

FLV = "FLV"
HLS = "HLS"
MP4 = "MP4"
AAC = "AAC"  # audio only

# A replay plays best as HLS, then MP4, then FLV (the only formats mobile browsers
# play are MP4 and HLS); an audio-only AAC recording is the last resort.
PLAYBACK_PREFERENCE = (HLS, MP4, FLV, AAC)
