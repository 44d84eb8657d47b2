"""rig.track"""
