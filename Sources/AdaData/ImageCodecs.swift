// Image decoding and encoding through the C shim over libjpeg and libpng.
import CImageCodecs

public enum ImageCodecs {
    /// The codec library versions linked into this binary.
    public static var libraryVersions: String { String(cString: aic_library_versions()) }
}
