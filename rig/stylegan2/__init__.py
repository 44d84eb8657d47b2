"""rig.stylegan2"""
